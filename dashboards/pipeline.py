"""The pipeline-health dashboard: the ingest workers' Prometheus metrics (ingest/metrics.py) and what ClickHouse
actually stored. Metric and label names here are checked against ingest.metrics by tests/dashboards."""

from __future__ import annotations

from dashboards import queries
from dashboards.model import Annotation, Dashboard, PromTarget
from dashboards.panels import timeseries

PIPELINE_UID = "finmon-pipeline"
RATE = "[$__rate_interval]"


def _quantiles(histogram: str, *qs: float) -> list[PromTarget]:
    return [PromTarget(f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{RATE})))", f"p{round(q * 100)}")
            for q in qs]


def _mean(histogram: str) -> PromTarget:
    return PromTarget(f"sum(rate({histogram}_sum{RATE})) / sum(rate({histogram}_count{RATE}))", "mean")


def pipeline_health(alert_annotations: list[Annotation]) -> Dashboard:
    panels = [
        timeseries("Throughput by outcome", PromTarget(
            f"sum by (outcome) (rate(finmon_documents_total{RATE}))", "{{outcome}}"), unit="docs/s", stack="normal",
            description="Documents per second leaving the pipeline: stored, duplicate or dead-lettered."),
        timeseries("Stored by source", PromTarget(
            f'sum by (source, kind) (rate(finmon_documents_total{{outcome="stored"}}{RATE}))', "{{source}} {{kind}}"),
            unit="docs/s", description="Documents per second written to ClickHouse, per source."),
        timeseries("Dead letters by reason", PromTarget(
            f"sum by (reason) (rate(finmon_dead_letters_total{RATE}))", "{{reason}}"), unit="msg/s", stack="normal",
            description="Messages sent to the *.dlq topics, by reason (invalid_json, missing_field:text...)."),
        timeseries("Consumer lag", PromTarget("sum by (topic, partition) (finmon_consumer_lag)",
                                              "{{topic}}/{{partition}}"), unit="short",
                   description="Messages behind the end of each partition. Growing lag: add workers (up to the "
                               "partition count) or Triton instances."),
        timeseries("Batch size", *_quantiles("finmon_batch_size", 0.5, 0.95), _mean("finmon_batch_size"),
                   unit="short", description="Documents per micro-batch sent to the model."),
        timeseries("Inference latency", *_quantiles("finmon_inference_seconds", 0.5, 0.95, 0.99),
                   unit="s", description="Model time per micro-batch (Triton round trip or in-process)."),
        timeseries("ClickHouse insert latency", *_quantiles("finmon_clickhouse_insert_seconds", 0.5, 0.95, 0.99),
                   unit="s", description="Time until ClickHouse acknowledged a batch (offsets commit after it)."),
        timeseries("Backpressure pauses", PromTarget(
            f"sum by (cause) (increase(finmon_backpressure_pauses_total{RATE}))", "{{cause}}"), unit="short",
            description="Consumption paused because Triton or ClickHouse was unavailable or slow."),
        timeseries("Stored in ClickHouse", queries.stored_by_kind(), unit="short", stack="normal",
                   description="Distinct documents by ingest time, as stored (cross-checks the counters)."),
        timeseries("Publication to storage delay", queries.ingest_delay(), unit="s",
                   description="Seconds from published_at to ingested_at (source latency + queue + model + insert)."),
        timeseries("Model versions", queries.model_versions(), unit="short", stack="normal", width=24,
                   description="Which model version labelled the documents stored in each interval."),
    ]
    return Dashboard(PIPELINE_UID, "finmon: pipeline health",
                     "Throughput, dead letters, batching, model and ClickHouse latency, consumer lag.", panels,
                     annotations=alert_annotations, refresh="30s", time_from="now-6h")
