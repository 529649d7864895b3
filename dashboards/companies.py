"""The company watchlist dashboard: the companies of the knowledge graph a user picks (by graph id, shown by
display name: every spelling and ticker of a company is one series), side by side, and the sectors."""

from __future__ import annotations

from dashboards import queries
from dashboards.model import Annotation, Dashboard
from dashboards.panels import company_variable, source_variable, table, timeseries
from dashboards.topics import COMPANIES_UID, example_overrides

_PERCENT = {"id": "unit", "value": "percentunit"}


def watchlist(alert_annotations: list[Annotation]) -> Dashboard:
    panels = [
        timeseries("Documents mentioning", queries.company_mentions(), unit="short",
                   description="Distinct documents that mention each selected company."),
        timeseries("Negative share", queries.company_negative_share(), unit="percentunit",
                   description="Negative documents / all documents mentioning the company."),
        table("Sentiment split", queries.company_sentiment_split(),
              description="Documents mentioning each company, by the document's sentiment."),
        table("Topics", queries.company_topics(),
              overrides=[{"matcher": {"id": "byName", "options": "negative_share"}, "properties": [_PERCENT]}],
              description="What the documents mentioning each company are about."),
        table("Example documents", queries.company_examples(), width=24, height=12, overrides=example_overrides(),
              description="The newest documents mentioning the selected companies; the title opens the original."),
        timeseries("Negative share per sector", queries.sector_negative_share(), unit="percentunit",
                   description="Distinct documents naming any company of the sector (a document naming three banks "
                               "counts once): a surge spread over a sector shows here even when each company is quiet."),
        table("Sectors", queries.sectors_table(),
              overrides=[{"matcher": {"id": "byName", "options": "negative_share"}, "properties": [_PERCENT]}],
              description="Documents per sector of the knowledge graph, by sentiment."),
    ]
    return Dashboard(
        COMPANIES_UID, "finmon: company watchlist", "Selected companies: mentions, sentiment and example documents.",
        panels, variables=[company_variable(), source_variable()], annotations=alert_annotations,
    )
