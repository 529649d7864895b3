"""Read queries that alerts, dashboards, the report and the demo share. All are parameterised.

Counts come from the per-minute aggregates (``uniqExactMerge`` of doc-id sets), so a document written twice is
counted once. Time ranges are half-open ``[start, end)``; on aggregates they select whole minutes (a document at
10:00:30 belongs to minute 10:00). ``None`` means unbounded. Rows are dicts; timestamps are UTC-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from inference.labels import SENTIMENTS
from ingest.store import (
    DOCUMENTS, ENTITY_ID_MINUTE, ENTITY_MENTIONS, ENTITY_MINUTE, PREDICTIONS, SECTOR_MINUTE, TICKER, TOPIC_MINUTE, Store,
)

_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_MAX = datetime(2105, 12, 31, tzinfo=UTC)
_RANGE = "m.minute >= {start:DateTime64(3, 'UTC')} AND m.minute < {end:DateTime64(3, 'UTC')}"
# An entity's display name and label: a name over a ticker (Wells Fargo, not $WFC), then the smallest, so every
# query answers the same whatever the merge order.
_DISPLAY = (
    "argMin(m.name, (m.label = {ticker:String}, m.name)) AS name, "
    "argMin(m.label, (m.label = {ticker:String}, m.label)) AS label"
)
_DOC_RANGE = "published_at >= {start:DateTime64(3, 'UTC')} AND published_at < {end:DateTime64(3, 'UTC')}"


def _range(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise ValueError("query bounds must be timezone-aware datetimes")
    return {"start": (start or _MIN).astimezone(UTC), "end": (end or _MAX).astimezone(UTC)}


def _bucket(bucket_seconds: int | None) -> tuple[str, dict[str, Any]]:
    if bucket_seconds is None:
        return "", {}
    if bucket_seconds < 60 or bucket_seconds % 60:
        raise ValueError("bucket_seconds must be a positive multiple of 60 (the aggregates are per minute)")
    return "toStartOfInterval(m.minute, toIntervalSecond({bucket:UInt32})) AS bucket, ", {"bucket": bucket_seconds}


def topic_counts(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, bucket_seconds: int | None = 60,
    by_source: bool = False, topics: Sequence[str] = (), sources: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Distinct documents per [bucket ×] topic × sentiment [× source]. ``bucket_seconds=None``: range totals."""
    bucket, params = _bucket(bucket_seconds)
    keys = (["bucket"] if bucket else []) + ["topic", "sentiment"] + (["source"] if by_source else [])
    sql = (
        f"SELECT {bucket}topic, sentiment, {'source, ' if by_source else ''}uniqExactMerge(m.docs) AS docs "
        f"FROM {TOPIC_MINUTE} AS m WHERE {_RANGE} "
        "AND (empty({topics:Array(String)}) OR has({topics:Array(String)}, topic)) "
        "AND (empty({sources:Array(String)}) OR has({sources:Array(String)}, source)) "
        f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
    return store.query(sql, {**_range(start, end), **params, "topics": list(topics), "sources": list(sources)})


def entity_counts(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, bucket_seconds: int | None = 60,
    entity_keys: Sequence[str] = (), labels: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Distinct documents per [bucket ×] entity_key × sentiment, with the entity's name, label and company_id."""
    bucket, params = _bucket(bucket_seconds)
    keys = (["bucket"] if bucket else []) + ["entity_key", "sentiment"]
    sql = (
        f"SELECT {bucket}entity_key, sentiment, {_DISPLAY}, "
        f"max(m.company_id) AS company_id, uniqExactMerge(m.docs) AS docs FROM {ENTITY_MINUTE} AS m "
        f"WHERE {_RANGE} AND (empty({{keys:Array(String)}}) OR has({{keys:Array(String)}}, m.entity_key)) "
        "AND (empty({labels:Array(String)}) OR has({labels:Array(String)}, m.label)) "
        f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
    params.update(keys=list(entity_keys), labels=list(labels), ticker=TICKER)
    return store.query(sql, {**_range(start, end), **params})


def top_entities(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, limit: int = 10,
    labels: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The entities mentioned by most documents: entity_key, name, label, company_id, docs, and docs per sentiment."""
    per_sentiment = ", ".join(
        f"uniqExactMergeIf(m.docs, sentiment = {{s{i}:String}}) AS {name}" for i, name in enumerate(SENTIMENTS)
    )
    sql = (
        f"SELECT entity_key, {_DISPLAY}, max(m.company_id) AS company_id, "
        f"uniqExactMerge(m.docs) AS docs, {per_sentiment} FROM {ENTITY_MINUTE} AS m WHERE {_RANGE} "
        "AND (empty({labels:Array(String)}) OR has({labels:Array(String)}, m.label)) "
        "GROUP BY entity_key ORDER BY docs DESC, entity_key LIMIT {limit:UInt32}"
    )
    params = {f"s{i}": name for i, name in enumerate(SENTIMENTS)} | {"ticker": TICKER}
    return store.query(sql, {**_range(start, end), **params, "labels": list(labels), "limit": limit})


def document_count(store: Store, start: datetime | None = None, end: datetime | None = None) -> int:
    """Distinct documents published in ``[start, end)`` (exact timestamps, from the deduplicated base table)."""
    rows = store.query(f"SELECT count() AS n FROM {DOCUMENTS} FINAL WHERE {_DOC_RANGE}", _range(start, end))
    return int(rows[0]["n"])


def time_bounds(store: Store) -> tuple[datetime, datetime] | None:
    """(first, last) ``published_at`` stored, or None for an empty store."""
    rows = store.query(f"SELECT count() AS n, min(published_at) AS lo, max(published_at) AS hi FROM {DOCUMENTS}")
    return (rows[0]["lo"], rows[0]["hi"]) if rows[0]["n"] else None


def example_documents(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, topic: str | None = None,
    entity_key: str | None = None, sentiment: str | None = None, limit: int = 5, sector: str | None = None,
) -> list[dict[str, Any]]:
    """Documents behind a count (for an alert or a drill-down), most confident first, then newest."""
    sql = (
        "SELECT p.doc_id AS doc_id, p.published_at AS published_at, p.source AS source, p.kind AS kind, "
        "d.title AS title, d.text AS text, d.url AS url, p.topic AS topic, p.sentiment AS sentiment, "
        f"p.sentiment_score AS sentiment_score FROM {PREDICTIONS} AS p FINAL "
        f"INNER JOIN (SELECT doc_id, title, text, url FROM {DOCUMENTS} FINAL WHERE {_DOC_RANGE}) AS d "
        "ON d.doc_id = p.doc_id WHERE p.published_at >= {start:DateTime64(3, 'UTC')} "
        "AND p.published_at < {end:DateTime64(3, 'UTC')} "
        "AND ({topic:Nullable(String)} IS NULL OR p.topic = {topic:Nullable(String)}) "
        "AND ({sentiment:Nullable(String)} IS NULL OR p.sentiment = {sentiment:Nullable(String)}) "
        "AND ({entity:Nullable(String)} IS NULL OR p.doc_id IN "
        f"(SELECT doc_id FROM {ENTITY_MENTIONS} WHERE entity_key = {{entity:Nullable(String)}})) "
        "AND ({sector:Nullable(String)} IS NULL OR p.doc_id IN "
        f"(SELECT doc_id FROM {ENTITY_MENTIONS} WHERE sector = {{sector:Nullable(String)}})) "
        "ORDER BY p.sentiment_score DESC, p.published_at DESC, p.doc_id LIMIT {limit:UInt32}"
    )
    params = {"topic": topic, "sentiment": sentiment, "entity": entity_key, "sector": sector, "limit": limit}
    return store.query(sql, {**_range(start, end), **params})


def graph_entity_counts(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, bucket_seconds: int | None = 60,
    entity_ids: Sequence[str] = (), kinds: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Distinct documents per [bucket ×] graph entity × sentiment, with its display name, kind and sector."""
    bucket, params = _bucket(bucket_seconds)
    keys = (["bucket"] if bucket else []) + ["entity_id", "sentiment"]
    sql = (
        f"SELECT {bucket}entity_id, sentiment, min(m.name) AS name, any(m.entity_kind) AS kind, "
        f"max(m.sector) AS sector, uniqExactMerge(m.docs) AS docs FROM {ENTITY_ID_MINUTE} AS m WHERE {_RANGE} "
        "AND (empty({ids:Array(String)}) OR has({ids:Array(String)}, m.entity_id)) "
        "AND (empty({kinds:Array(String)}) OR has({kinds:Array(String)}, m.entity_kind)) "
        f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
    return store.query(sql, {**_range(start, end), **params, "ids": list(entity_ids), "kinds": list(kinds)})


def top_graph_entities(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, limit: int = 10,
    kinds: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The entities mentioned by most documents, one row per real-world entity (graph id, else normal name):
    entity_id, name (the graph's display name), kind, sector, ticker (companies), docs, docs per sentiment."""
    per_sentiment = ", ".join(
        f"uniqExactMergeIf(m.docs, sentiment = {{s{i}:String}}) AS {name}" for i, name in enumerate(SENTIMENTS)
    )
    sql = (
        "SELECT entity_id, min(m.name) AS name, any(m.entity_kind) AS kind, max(m.sector) AS sector, "
        "if(kind = 'company', entity_id, '') AS ticker, "
        f"uniqExactMerge(m.docs) AS docs, {per_sentiment} FROM {ENTITY_ID_MINUTE} AS m WHERE {_RANGE} "
        "AND (empty({kinds:Array(String)}) OR has({kinds:Array(String)}, m.entity_kind)) "
        "GROUP BY entity_id ORDER BY docs DESC, entity_id LIMIT {limit:UInt32}"
    )
    params = {f"s{i}": name for i, name in enumerate(SENTIMENTS)}
    return store.query(sql, {**_range(start, end), **params, "kinds": list(kinds), "limit": limit})


def sector_counts(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, bucket_seconds: int | None = 60,
    sectors: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Distinct documents per [bucket ×] sector × sentiment: a document naming three banks counts once."""
    bucket, params = _bucket(bucket_seconds)
    keys = (["bucket"] if bucket else []) + ["sector", "sentiment"]
    sql = (
        f"SELECT {bucket}sector, sentiment, uniqExactMerge(m.docs) AS docs FROM {SECTOR_MINUTE} AS m "
        f"WHERE {_RANGE} AND (empty({{sectors:Array(String)}}) OR has({{sectors:Array(String)}}, m.sector)) "
        f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
    return store.query(sql, {**_range(start, end), **params, "sectors": list(sectors)})


def linked_share(store: Store, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """ORG/TICKER mentions in ``[start, end)`` and how many of them carry a company id (the linking coverage)."""
    sql = (
        "SELECT label, count() AS mentions, countIf(company_id != '') AS linked "
        f"FROM {ENTITY_MENTIONS} FINAL WHERE {_DOC_RANGE} AND label IN ('ORG', 'TICKER') GROUP BY label ORDER BY label"
    )
    return {r["label"]: {"mentions": r["mentions"], "linked": r["linked"]} for r in store.query(sql, _range(start, end))}


def entity_title(row: dict[str, Any]) -> str:
    """What a row of ``top_graph_entities`` is called in a report: "Tesla (TSLA)", "United States", "elon musk"."""
    name = row.get("name") or row["entity_id"]
    return f"{name} ({row['ticker']})" if row.get("ticker") and row["ticker"] != name else name
