"""The ClickHouse SQL of every panel, built from the storage module's table names and the model's label names.

Counts are distinct documents: ``uniqExactMerge`` over the per-minute aggregates, ``uniqExact(doc_id)`` over the
base tables, so an at-least-once replay never shows up twice. The SQL keeps the plugin's macros and the dashboard
variables (``dashboards.macros`` expands them the way Grafana does); all values that come from a user go through
``${var:singlequote}``, which quotes and escapes each value.
"""

from __future__ import annotations

from inference.labels import ENTITY_TYPES, SENTIMENTS
from ingest.store import DOCUMENTS, ENTITY_ID_MINUTE, ENTITY_MENTIONS, ENTITY_MINUTE, PREDICTIONS, SECTOR_MINUTE, TOPIC_MINUTE

from dashboards.model import SqlTarget

NEGATIVE = "negative"
COMPANY_LABELS = ("ORG", "TICKER")  # the entity types a watchlist follows
COMPANY = "company"  # the entity_kind of a mention linked to a company of the knowledge graph
assert NEGATIVE in SENTIMENTS and set(COMPANY_LABELS) <= set(ENTITY_TYPES)

# The aggregates are keyed by the start of each minute: a plain $__timeFilter(minute) would drop the minute that
# contains the range start (its key is before it), so whole minutes that overlap the range are selected.
MINUTES = "minute >= toStartOfMinute($__fromTime) AND minute <= $__toTime"
SOURCE_FILTER = "$__conditionalAll(source IN (${source:singlequote}), $source)"
SENTIMENT_FILTER = "$__conditionalAll(sentiment IN (${sentiment:singlequote}), $sentiment)"
EXCERPT_CHARS = 280
EXAMPLES = 50


def literal(value: str) -> str:
    """A ClickHouse string literal for a constant of ours (label names), never for user input."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _labels(values: tuple[str, ...]) -> str:
    return ", ".join(literal(v) for v in values)


NEGATIVE_SHARE_AGG = f"uniqExactMergeIf(docs, sentiment = {literal(NEGATIVE)}) / greatest(uniqExactMerge(docs), 1)"
NEGATIVE_SHARE_RAW = f"uniqExactIf(doc_id, sentiment = {literal(NEGATIVE)}) / greatest(uniqExact(doc_id), 1)"


# -- variables -------------------------------------------------------------------------------------------------

def sources() -> SqlTarget:
    return SqlTarget(f"SELECT DISTINCT source FROM {TOPIC_MINUTE} WHERE {MINUTES} ORDER BY source",
                     ("source",))


def companies(limit: int = 200) -> SqlTarget:
    """(value, text) pairs: the graph id a query filters on (AAPL), and the display name the drop-down shows."""
    return SqlTarget(
        f"SELECT entity_id AS entity_key, concat(min(name), ' (', entity_id, ')') AS company FROM {ENTITY_ID_MINUTE} "
        f"WHERE {MINUTES} AND entity_kind = {literal(COMPANY)} GROUP BY entity_id "
        f"ORDER BY uniqExactMerge(docs) DESC, entity_id LIMIT {limit}",
        ("entity_key", "company"),
    )


# -- topics (per-minute aggregate) -------------------------------------------------------------------------------

def document_total() -> SqlTarget:
    return SqlTarget(f"SELECT uniqExactMerge(docs) AS documents FROM {TOPIC_MINUTE} "
                     f"WHERE {MINUTES} AND {SOURCE_FILTER}", ("documents",))


def negative_share_total() -> SqlTarget:
    return SqlTarget(f"SELECT {NEGATIVE_SHARE_AGG} AS negative_share FROM {TOPIC_MINUTE} "
                     f"WHERE {MINUTES} AND {SOURCE_FILTER}", ("negative_share",))


def volume_by_source(topic_filter: bool = False) -> SqlTarget:
    topic = " AND topic = ${topic:singlequote}" if topic_filter else ""
    return SqlTarget(
        f"SELECT $__timeInterval(minute) AS time, source, uniqExactMerge(docs) AS documents FROM {TOPIC_MINUTE} "
        f"WHERE {MINUTES} AND {SOURCE_FILTER}{topic} GROUP BY time, source ORDER BY time, source",
        ("time", "source", "documents"), "time_series",
    )


def sentiment_mix(*, topic_filter: bool = True, sentiment_filter: bool = False) -> SqlTarget:
    """Documents per sentiment over time, for one topic (``${topic}``: single, or a repeated panel's value)."""
    where = [MINUTES, SOURCE_FILTER]
    if topic_filter:
        where.append("topic = ${topic:singlequote}")
    if sentiment_filter:
        where.append(SENTIMENT_FILTER)
    return SqlTarget(
        f"SELECT $__timeInterval(minute) AS time, sentiment, uniqExactMerge(docs) AS documents FROM {TOPIC_MINUTE} "
        f"WHERE {' AND '.join(where)} GROUP BY time, sentiment ORDER BY time, sentiment",
        ("time", "sentiment", "documents"), "time_series",
    )


def negative_share_by_topic_hour() -> SqlTarget:
    """Heat-map cells: one row per topic, one column per hour."""
    return SqlTarget(
        f"SELECT toStartOfHour(minute) AS time, topic, {NEGATIVE_SHARE_AGG} AS negative_share FROM {TOPIC_MINUTE} "
        f"WHERE {MINUTES} AND {SOURCE_FILTER} GROUP BY time, topic ORDER BY time, topic",
        ("time", "topic", "negative_share"), "time_series",
    )


def negative_share_by_source(topic_filter: bool = True) -> SqlTarget:
    where = f"{MINUTES} AND {SOURCE_FILTER}" + (" AND topic = ${topic:singlequote}" if topic_filter else "")
    return SqlTarget(
        f"SELECT $__timeInterval(minute) AS time, source, {NEGATIVE_SHARE_AGG} AS negative_share "
        f"FROM {TOPIC_MINUTE} WHERE {where} GROUP BY time, source ORDER BY time, source",
        ("time", "source", "negative_share"), "time_series",
    )


# -- companies -------------------------------------------------------------------------------------------------

def most_negative_companies(min_documents: int = 3, limit: int = 15) -> SqlTarget:
    """Companies of the graph by negative share: one row per company whatever its spellings and tickers."""
    return SqlTarget(
        f"SELECT min(name) AS company, entity_id AS entity_key, uniqExactMerge(docs) AS documents, "
        f"{NEGATIVE_SHARE_AGG} AS negative_share FROM {ENTITY_ID_MINUTE} WHERE {MINUTES} "
        f"AND entity_kind = {literal(COMPANY)} GROUP BY entity_id HAVING documents >= {min_documents} "
        f"ORDER BY negative_share DESC, documents DESC, entity_id LIMIT {limit}",
        ("company", "entity_key", "documents", "negative_share"),
    )


def sector_negative_share() -> SqlTarget:
    """Negative share per sector of the graph (distinct documents naming any of its companies)."""
    return SqlTarget(
        f"SELECT $__timeInterval(minute) AS time, sector, {NEGATIVE_SHARE_AGG} AS negative_share "
        f"FROM {SECTOR_MINUTE} WHERE {MINUTES} GROUP BY time, sector ORDER BY time, sector",
        ("time", "sector", "negative_share"), "time_series",
    )


def sectors_table() -> SqlTarget:
    per = ", ".join(f"uniqExactMergeIf(docs, sentiment = {literal(s)}) AS {s}" for s in SENTIMENTS)
    return SqlTarget(
        f"SELECT sector, uniqExactMerge(docs) AS documents, {per}, {NEGATIVE_SHARE_AGG} AS negative_share "
        f"FROM {SECTOR_MINUTE} WHERE {MINUTES} GROUP BY sector ORDER BY documents DESC, sector",
        ("sector", "documents", *SENTIMENTS, "negative_share"),
    )


def entities_in_topic(limit: int = 20) -> SqlTarget:
    return SqlTarget(
        f"SELECT entity_key, any(text) AS entity, any(label) AS label, uniqExact(doc_id) AS documents, "
        f"{NEGATIVE_SHARE_RAW} AS negative_share FROM {ENTITY_MENTIONS} WHERE $__timeFilter(published_at) "
        f"AND topic = ${{topic:singlequote}} AND {SOURCE_FILTER} GROUP BY entity_key "
        f"ORDER BY documents DESC, entity_key LIMIT {limit}",
        ("entity_key", "entity", "label", "documents", "negative_share"),
    )


_COMPANY_WHERE = f"$__timeFilter(published_at) AND entity_key IN (${{company:singlequote}}) AND {SOURCE_FILTER}"


def company_mentions() -> SqlTarget:
    return SqlTarget(
        f"SELECT $__timeInterval(published_at) AS time, min(name) AS company, uniqExact(doc_id) AS documents "
        f"FROM {ENTITY_MENTIONS} WHERE {_COMPANY_WHERE} GROUP BY time, entity_key ORDER BY time, company",
        ("time", "company", "documents"), "time_series",
    )


def company_negative_share() -> SqlTarget:
    return SqlTarget(
        f"SELECT $__timeInterval(published_at) AS time, min(name) AS company, {NEGATIVE_SHARE_RAW} AS negative_share "
        f"FROM {ENTITY_MENTIONS} WHERE {_COMPANY_WHERE} GROUP BY time, entity_key ORDER BY time, company",
        ("time", "company", "negative_share"), "time_series",
    )


def company_sentiment_split() -> SqlTarget:
    per = ", ".join(f"uniqExactIf(doc_id, sentiment = {literal(s)}) AS {s}" for s in SENTIMENTS)
    return SqlTarget(
        f"SELECT entity_key AS company, min(name) AS name, uniqExact(doc_id) AS documents, {per} "
        f"FROM {ENTITY_MENTIONS} WHERE {_COMPANY_WHERE} GROUP BY company ORDER BY documents DESC, company",
        ("company", "name", "documents", *SENTIMENTS),
    )


def company_topics() -> SqlTarget:
    return SqlTarget(
        f"SELECT entity_key AS company, topic, uniqExact(doc_id) AS documents, {NEGATIVE_SHARE_RAW} AS negative_share "
        f"FROM {ENTITY_MENTIONS} WHERE {_COMPANY_WHERE} GROUP BY company, topic "
        f"ORDER BY company, documents DESC, topic",
        ("company", "topic", "documents", "negative_share"),
    )


# -- example documents (base tables, deduplicated with FINAL on a time-bounded slice) ------------------------------

def _examples(where: str, company: bool) -> SqlTarget:
    mention = (f" AND p.doc_id IN (SELECT doc_id FROM {ENTITY_MENTIONS} WHERE $__timeFilter(published_at) "
               f"AND entity_key IN (${{company:singlequote}}))") if company else ""
    return SqlTarget(
        f"SELECT p.published_at AS time, p.source AS source, p.topic AS topic, p.sentiment AS sentiment, "
        f"round(p.sentiment_score, 3) AS confidence, d.title AS title, "
        f"substring(d.text, 1, {EXCERPT_CHARS}) AS excerpt, d.url AS url FROM {PREDICTIONS} AS p FINAL "
        f"INNER JOIN (SELECT doc_id, title, text, url FROM {DOCUMENTS} FINAL WHERE $__timeFilter(published_at)) "
        f"AS d ON d.doc_id = p.doc_id WHERE $__timeFilter(p.published_at) AND {where}{mention} "
        f"ORDER BY p.published_at DESC, p.doc_id LIMIT {EXAMPLES}",
        ("time", "source", "topic", "sentiment", "confidence", "title", "excerpt", "url"),
    )


def topic_examples() -> SqlTarget:
    return _examples(
        "p.topic = ${topic:singlequote} AND $__conditionalAll(p.source IN (${source:singlequote}), $source) "
        "AND $__conditionalAll(p.sentiment IN (${sentiment:singlequote}), $sentiment)", company=False)


def company_examples() -> SqlTarget:
    return _examples("$__conditionalAll(p.source IN (${source:singlequote}), $source)", company=True)


# -- pipeline (what was stored, by ingest time) ----------------------------------------------------------------

# The base tables are partitioned and min-max indexed by published_at, not ingested_at: bounding published_at too
# lets ClickHouse skip old partitions. Documents published more than this long before their ingestion (a backfill)
# are left out of these panels.
INGEST_LAG_DAYS = 30
_INGESTED = f"$__timeFilter(ingested_at) AND published_at >= $__fromTime - INTERVAL {INGEST_LAG_DAYS} DAY"

def stored_by_kind() -> SqlTarget:
    return SqlTarget(
        f"SELECT $__timeInterval(ingested_at) AS time, kind, uniqExact(doc_id) AS documents FROM {DOCUMENTS} "
        f"WHERE {_INGESTED} GROUP BY time, kind ORDER BY time, kind",
        ("time", "kind", "documents"), "time_series",
    )


def ingest_delay() -> SqlTarget:
    """Seconds from publication to storage (source latency + queueing + model + insert)."""
    delay = "dateDiff('millisecond', published_at, ingested_at) / 1000"
    return SqlTarget(
        f"SELECT $__timeInterval(ingested_at) AS time, quantile(0.5)({delay}) AS p50, "
        f"quantile(0.95)({delay}) AS p95 FROM {DOCUMENTS} WHERE {_INGESTED} "
        f"GROUP BY time ORDER BY time",
        ("time", "p50", "p95"), "time_series",
    )


def model_versions() -> SqlTarget:
    return SqlTarget(
        f"SELECT $__timeInterval(ingested_at) AS time, model_version, uniqExact(doc_id) AS documents "
        f"FROM {PREDICTIONS} WHERE {_INGESTED} GROUP BY time, model_version "
        f"ORDER BY time, model_version",
        ("time", "model_version", "documents"), "time_series",
    )
