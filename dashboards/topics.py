"""The overview and the topic drill-down dashboards."""

from __future__ import annotations

from dashboards import queries
from dashboards.model import Annotation, Dashboard, Panel
from dashboards.panels import (
    barchart,
    heatmap,
    link,
    sentiment_colors,
    sentiment_variable,
    source_variable,
    stat,
    table,
    timeseries,
    topic_variable,
)

OVERVIEW_UID = "finmon-overview"
TOPIC_UID = "finmon-topic"
COMPANIES_UID = "finmon-companies"  # defined in dashboards.companies; linked from here

_TIME = "${__url_time_range}"
COMPANY_LINK = f"/d/{COMPANIES_UID}/?var-company=${{__data.fields.entity_key}}&{_TIME}"


def example_overrides() -> list[dict]:
    """Example-document tables: the title opens the original article; the raw url column stays for copying."""
    return [link("title", "Open the original", "${__data.fields.url}"), *sentiment_colors()]


def overview(alert_panels: list[Panel], alert_annotations: list[Annotation]) -> Dashboard:
    """``alert_panels``: the open-alerts stat and table (dashboards.history)."""
    panels = [
        stat("Documents", queries.document_total(), unit="short", description="Distinct documents published."),
        stat("Negative share", queries.negative_share_total(), unit="percentunit",
             description="Share of documents the model reads as negative."),
        *alert_panels,
        timeseries("Volume by source", queries.volume_by_source(), unit="short", stack="normal", width=24,
                   description="Distinct documents per interval and source."),
        heatmap("Negative share by topic and hour", queries.negative_share_by_topic_hour(), unit="percentunit",
                description="Each cell: negative documents / all documents of that topic in that hour."),
        barchart("Most negative companies", queries.most_negative_companies(), unit="percentunit", width=24,
                 overrides=[link("company", "Company watchlist", COMPANY_LINK)],
                 description="Companies with at least 3 documents, by negative share; click one for its watchlist."),
        timeseries("Sentiment mix: $topic", queries.sentiment_mix(), unit="short", stack="percent", width=6,
                   overrides=sentiment_colors(), repeat="topic", repeatDirection="h", maxPerRow=4,
                   description="Share of each sentiment among the topic's documents (one panel per topic)."),
    ]
    return Dashboard(
        OVERVIEW_UID, "finmon: overview", "Volume, sentiment and alerts across all topics and sources.", panels,
        variables=[source_variable(), topic_variable(multi=True)], annotations=alert_annotations,
    )


def topic_drilldown(alert_annotations: list[Annotation]) -> Dashboard:
    panels = [
        timeseries("Documents by sentiment", queries.sentiment_mix(sentiment_filter=True), unit="short",
                   stack="normal", overrides=sentiment_colors(), description="Distinct documents of $topic."),
        timeseries("Negative share by source", queries.negative_share_by_source(), unit="percentunit",
                   description="Negative documents / all documents of $topic, per source."),
        table("Companies and people in $topic", queries.entities_in_topic(),
              overrides=[link("entity_key", "Company watchlist", COMPANY_LINK),
                         {"matcher": {"id": "byName", "options": "negative_share"},
                          "properties": [{"id": "unit", "value": "percentunit"}]}],
              description="Entities mentioned by the most documents of the topic."),
        timeseries("Documents by source", queries.volume_by_source(topic_filter=True), unit="short",
                   stack="normal", description="Distinct documents of $topic per source."),
        table("Example documents", queries.topic_examples(), width=24, height=12, overrides=example_overrides(),
              description="The newest documents of $topic; the title opens the original."),
    ]
    return Dashboard(
        TOPIC_UID, "finmon: topic drill-down", "One topic: volume, sentiment, entities and example documents.",
        panels, variables=[topic_variable(multi=False), source_variable(), sentiment_variable()],
        annotations=alert_annotations,
    )
