"""The metrics names the dashboards read, served over HTTP with a readiness probe."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics, MetricsServer


def test_metrics_and_healthz_over_http() -> None:
    metrics = IngestMetrics(CollectorRegistry())
    metrics.documents.labels(source="wire", kind="news", outcome="stored").inc(3)
    metrics.consumer_lag.labels(topic="news.raw", partition="0").set(7)
    metrics.backpressure_pauses.labels(cause="model").inc()
    ready = [False]
    server = MetricsServer(metrics.registry, lambda: ready[0], "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        text = httpx.get(f"{base}/metrics").text
        assert 'finmon_documents_total{kind="news",outcome="stored",source="wire"} 3.0' in text
        assert 'finmon_consumer_lag{partition="0",topic="news.raw"} 7.0' in text
        assert 'finmon_backpressure_pauses_total{cause="model"} 1.0' in text
        for name in ("finmon_dead_letters_total", "finmon_batch_size", "finmon_inference_seconds",
                     "finmon_clickhouse_insert_seconds"):
            assert f"# TYPE {name}" in text
        assert httpx.get(f"{base}/healthz").status_code == 503
        ready[0] = True
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/other").status_code == 404
    finally:
        server.stop()
