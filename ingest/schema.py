"""ClickHouse schema: table names (defined once, re-exported by ``ingest.store``) and versioned migrations.

Exactly-once counting under at-least-once delivery (see docs/storage.md):
- base tables are ``ReplacingMergeTree`` ordered by ``doc_id``; readers that need exact rows use ``FINAL``;
- the per-minute aggregates are ``AggregatingMergeTree`` tables fed by materialised views and hold
  ``uniqExactState(doc_id)``: a replayed document adds a doc_id already in the set, whatever the batch it comes
  in, so ``uniqExactMerge`` returns single-write numbers even though the view fires on every insert.
A migration is a list of statements that must each be idempotent (IF NOT EXISTS), so re-running a half-applied
migration is safe. Never edit a shipped migration: append a new version.
"""

from __future__ import annotations

from typing import NamedTuple

DOCUMENTS = "documents"
PREDICTIONS = "predictions"
ENTITY_MENTIONS = "entity_mentions"
TOPIC_MINUTE = "topic_sentiment_minute"
ENTITY_MINUTE = "entity_sentiment_minute"
MIGRATIONS_TABLE = "schema_migrations"
TOPIC_MINUTE_MV = f"{TOPIC_MINUTE}_mv"
ENTITY_MINUTE_MV = f"{ENTITY_MINUTE}_mv"
PREDICTION_WRITES = "prediction_writes"
PREDICTION_WRITES_MV = f"{PREDICTION_WRITES}_mv"
# knowledge graph (migration 2): the graph itself, and roll-ups per graph id and per sector
KG_ENTITIES = "kg_entities"
KG_RELATIONS = "kg_relations"
ENTITY_ID_MINUTE = "entity_id_sentiment_minute"
SECTOR_MINUTE = "sector_sentiment_minute"
ENTITY_ID_MINUTE_MV = f"{ENTITY_ID_MINUTE}_mv"
SECTOR_MINUTE_MV = f"{SECTOR_MINUTE}_mv"


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]  # formatted with ``db`` (a validated identifier), never with user text


MIGRATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {{db}}.{MIGRATIONS_TABLE} (
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version
"""

_V1 = (
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{DOCUMENTS} (
    doc_id String,
    source LowCardinality(String),
    kind LowCardinality(String),
    published_at DateTime64(3, 'UTC'),
    title String,
    text String,
    url String,
    author String,
    lang LowCardinality(String),
    meta String,
    content_hash String,
    schema_version UInt16,
    ingested_at DateTime64(3, 'UTC'),
    INDEX idx_published published_at TYPE minmax GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(published_at)
ORDER BY doc_id
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{PREDICTIONS} (
    doc_id String,
    model_version LowCardinality(String),
    published_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    kind LowCardinality(String),
    topic LowCardinality(String),
    topic_score Float32,
    sentiment LowCardinality(String),
    sentiment_score Float32,
    p_negative Float32,
    p_neutral Float32,
    p_positive Float32,
    topic_probs Map(LowCardinality(String), Float32),
    truncated UInt8,
    ingested_at DateTime64(3, 'UTC'),
    INDEX idx_published published_at TYPE minmax GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(published_at)
ORDER BY doc_id
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{ENTITY_MENTIONS} (
    doc_id String,
    published_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    kind LowCardinality(String),
    topic LowCardinality(String),
    start UInt32,
    end UInt32,
    label LowCardinality(String),
    text String,
    entity_key String,
    company_id String,
    score Float32,
    sentiment LowCardinality(String),
    ingested_at DateTime64(3, 'UTC'),
    INDEX idx_published published_at TYPE minmax GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(published_at)
ORDER BY (doc_id, start, end, label)
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{TOPIC_MINUTE} (
    minute DateTime('UTC'),
    topic LowCardinality(String),
    sentiment LowCardinality(String),
    source LowCardinality(String),
    kind LowCardinality(String),
    docs AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, topic, sentiment, source, kind)
""",
    f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{TOPIC_MINUTE_MV} TO {{db}}.{TOPIC_MINUTE} AS
SELECT toStartOfMinute(published_at) AS minute, topic, sentiment, source, kind, uniqExactState(doc_id) AS docs
FROM {{db}}.{PREDICTIONS}
GROUP BY minute, topic, sentiment, source, kind
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{ENTITY_MINUTE} (
    minute DateTime('UTC'),
    entity_key String,
    label LowCardinality(String),
    company_id String,
    sentiment LowCardinality(String),
    name SimpleAggregateFunction(min, String),
    docs AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, entity_key, label, company_id, sentiment)
""",
    f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{ENTITY_MINUTE_MV} TO {{db}}.{ENTITY_MINUTE} AS
SELECT toStartOfMinute(published_at) AS minute, entity_key, label, company_id, sentiment,
       min(text) AS name, uniqExactState(doc_id) AS docs
FROM {{db}}.{ENTITY_MENTIONS}
GROUP BY minute, entity_key, label, company_id, sentiment
""",
)

# Migration 2: every mention carries its graph link (entity_key is the graph id or the normal name; name is the
# graph's display name; entity_kind company/place/institution, else the span label; sector of a company), the
# graph is a table, and two more exactly-once roll-ups count distinct documents per graph id and per sector
# (a document naming three banks counts once for Financials). Rows written before it read name = text.
_V2 = (
    f"ALTER TABLE {{db}}.{ENTITY_MENTIONS} ADD COLUMN IF NOT EXISTS name String DEFAULT text",
    f"ALTER TABLE {{db}}.{ENTITY_MENTIONS} ADD COLUMN IF NOT EXISTS entity_kind LowCardinality(String) DEFAULT label",
    f"ALTER TABLE {{db}}.{ENTITY_MENTIONS} ADD COLUMN IF NOT EXISTS sector LowCardinality(String) DEFAULT ''",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{KG_ENTITIES} (
    id String,
    kind LowCardinality(String),
    name String,
    legal_name String,
    aliases Array(String),
    tickers Array(String),
    exchange LowCardinality(String),
    cik UInt64,
    sector LowCardinality(String),
    industry LowCardinality(String),
    etf UInt8,
    country String,
    loaded_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(loaded_at) ORDER BY id
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{KG_RELATIONS} (
    subject String,
    relation LowCardinality(String),
    object String,
    loaded_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(loaded_at) ORDER BY (subject, relation, object)
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{ENTITY_ID_MINUTE} (
    minute DateTime('UTC'),
    entity_id String,
    entity_kind LowCardinality(String),
    sector LowCardinality(String),
    sentiment LowCardinality(String),
    name SimpleAggregateFunction(min, String),
    docs AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, entity_id, entity_kind, sector, sentiment)
""",
    f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{ENTITY_ID_MINUTE_MV} TO {{db}}.{ENTITY_ID_MINUTE} AS
SELECT toStartOfMinute(published_at) AS minute, entity_key AS entity_id, entity_kind, sector, sentiment,
       min(name) AS name, uniqExactState(doc_id) AS docs
FROM {{db}}.{ENTITY_MENTIONS}
GROUP BY minute, entity_id, entity_kind, sector, sentiment
""",
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{SECTOR_MINUTE} (
    minute DateTime('UTC'),
    sector LowCardinality(String),
    sentiment LowCardinality(String),
    docs AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, sector, sentiment)
""",
    f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{SECTOR_MINUTE_MV} TO {{db}}.{SECTOR_MINUTE} AS
SELECT toStartOfMinute(published_at) AS minute, sector, sentiment, uniqExactState(doc_id) AS docs
FROM {{db}}.{ENTITY_MENTIONS}
WHERE sector != ''
GROUP BY minute, sector, sentiment
""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base tables and per-minute aggregates", _V1),
    Migration(2, "knowledge graph: entity links, graph tables, per-entity and per-sector roll-ups", _V2),
)

# An audit log of every prediction insert (a plain MergeTree: it keeps every copy, never merges two into one), so
# that a double write, which the ReplacingMergeTree base tables and the uniqExact aggregates hide by design, can
# still be seen: `count()` per doc_id above 1 is a document predicted and counted twice. Kept 30 days.
_V4 = (
    f"""
CREATE TABLE IF NOT EXISTS {{db}}.{PREDICTION_WRITES} (
    doc_id String,
    model_version LowCardinality(String),
    topic LowCardinality(String),
    sentiment LowCardinality(String),
    ingested_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ingested_at)
ORDER BY (doc_id, ingested_at)
TTL toDateTime(ingested_at) + INTERVAL 30 DAY
""",
    f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{PREDICTION_WRITES_MV} TO {{db}}.{PREDICTION_WRITES} AS
SELECT doc_id, model_version, topic, sentiment, ingested_at FROM {{db}}.{PREDICTIONS}
""",
)


# -- version 3: stories (issue 12) ----------------------------------------------------------------------------------
# Every document carries the id of the story it belongs to (``ingest.stories``: near-duplicates and re-posts of
# one article share it), and per-minute aggregates count distinct stories, so a story copied thirty times counts
# once in an alert's test. The backfill INSERTs are idempotent in effect: they add uniqExact states of ids already
# in the sets (a document written before this migration is its own story).
TOPIC_STORY_MINUTE = "topic_story_minute"
ENTITY_STORY_MINUTE = "entity_story_minute"
_STORY = "if(story_id = '', doc_id, story_id)"


def _story_aggregate(table: str, source: str, key: str) -> tuple[str, ...]:
    """Distinct stories per minute × ``key`` × sentiment from ``source``: the table, its view, the backfill."""
    select = (f"SELECT toStartOfMinute(published_at) AS minute, {key}, sentiment, uniqExactState({_STORY}) AS stories "
              f"FROM {{db}}.{source}")
    return (
        f"CREATE TABLE IF NOT EXISTS {{db}}.{table} (minute DateTime('UTC'), {key} "
        f"{'LowCardinality(String)' if key == 'topic' else 'String'}, sentiment LowCardinality(String), "
        f"stories AggregateFunction(uniqExact, String)) ENGINE = AggregatingMergeTree "
        f"PARTITION BY toYYYYMM(minute) ORDER BY (minute, {key}, sentiment)",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{table}_mv TO {{db}}.{table} AS {select} "
        f"GROUP BY minute, {key}, sentiment",
        f"INSERT INTO {{db}}.{table} {select} FINAL GROUP BY minute, {key}, sentiment",
    )


_V3 = (
    *(f"ALTER TABLE {{db}}.{table} ADD COLUMN IF NOT EXISTS story_id String DEFAULT ''"
      for table in (DOCUMENTS, PREDICTIONS, ENTITY_MENTIONS)),
    *_story_aggregate(TOPIC_STORY_MINUTE, PREDICTIONS, "topic"),
    *_story_aggregate(ENTITY_STORY_MINUTE, ENTITY_MENTIONS, "entity_key"),
)
MIGRATIONS += (Migration(3, "story ids and per-minute distinct-story aggregates", _V3),)
MIGRATIONS += (Migration(4, "prediction_writes: an audit log of every prediction insert", _V4),)


# -- version 5: one roll-up per base table (issue 14) ----------------------------------------------------------------
# Every insert into a table writes one part into it and one into each view's target, and on a small batch a part
# costs about the same whatever its rows (~5 ms of CPU in chDB, plus its later merges): with six per-minute
# aggregates a batch wrote ten parts. The six become two, each at the finest key any reader needs, holding both the
# document and the story sets; uniqExact states merge exactly over any subset of that key, so a reader grouping by
# fewer columns gets the same numbers. The old names stay, as plain views over the two, so every reader (and any
# panel a user wrote against them) keeps working; the sector view keeps only the mentions that carry a sector.
TOPIC_ROLLUP = "topic_rollup_minute"
ENTITY_ROLLUP = "entity_rollup_minute"
_LOW = "LowCardinality(String)"
# roll-up -> (base table, its key after the minute: column -> type, display columns kept as min(...))
_ROLLUPS = {
    TOPIC_ROLLUP: (PREDICTIONS, {"topic": _LOW, "sentiment": _LOW, "source": _LOW, "kind": _LOW}, ()),
    ENTITY_ROLLUP: (ENTITY_MENTIONS, {"entity_key": "String", "label": _LOW, "company_id": "String",
                                      "entity_kind": _LOW, "sector": _LOW, "sentiment": _LOW}, ("text", "name")),
}
# the six former aggregate tables, as views: name -> the SELECT list over its roll-up [and a filter]
_ROLLUP_VIEWS = {
    TOPIC_MINUTE: (TOPIC_ROLLUP, "minute, topic, sentiment, source, kind, docs", ""),
    TOPIC_STORY_MINUTE: (TOPIC_ROLLUP, "minute, topic, sentiment, stories", ""),
    ENTITY_MINUTE: (ENTITY_ROLLUP, "minute, entity_key, label, company_id, sentiment, text AS name, docs", ""),
    ENTITY_ID_MINUTE: (ENTITY_ROLLUP, "minute, entity_key AS entity_id, entity_kind, sector, sentiment, name, docs",
                       ""),
    SECTOR_MINUTE: (ENTITY_ROLLUP, "minute, sector, sentiment, docs", " WHERE sector != ''"),
    ENTITY_STORY_MINUTE: (ENTITY_ROLLUP, "minute, entity_key, sentiment, stories", ""),
}


def _rollups() -> tuple[str, ...]:
    """Migration 5, in an order that loses no write of a worker still running: the new views start feeding the
    roll-ups, the old views stop, the roll-ups are filled from the base tables (adding ids already in a set
    changes nothing, so a document counted twice here counts once), then the old tables become views."""
    create = []
    fill = []
    for table, (source, key_types, shown) in _ROLLUPS.items():
        key = ", ".join(["minute", *key_types])
        columns = ", ".join([f"{c} {t}" for c, t in key_types.items()]
                            + [f"{c} SimpleAggregateFunction(min, String)" for c in shown])
        select = ("SELECT " + ", ".join(["toStartOfMinute(published_at) AS minute", *key_types,
                                         *(f"min({c}) AS {c}" for c in shown)])
                  + f", uniqExactState(doc_id) AS docs, uniqExactState({_STORY}) AS stories FROM {{db}}.{source}")
        create += [
            f"CREATE TABLE IF NOT EXISTS {{db}}.{table} (minute DateTime('UTC'), {columns}, "
            "docs AggregateFunction(uniqExact, String), stories AggregateFunction(uniqExact, String)) "
            f"ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(minute) ORDER BY ({key})",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{table}_mv TO {{db}}.{table} AS {select} GROUP BY {key}",
        ]
        fill.append(f"INSERT INTO {{db}}.{table} {select} FINAL GROUP BY {key}")
    stop = [f"DROP VIEW IF EXISTS {{db}}.{name}_mv" for name in _ROLLUP_VIEWS]
    swap = [statement for name, (rollup, columns, where) in _ROLLUP_VIEWS.items() for statement in (
        f"DROP TABLE IF EXISTS {{db}}.{name}",
        f"CREATE VIEW IF NOT EXISTS {{db}}.{name} AS SELECT {columns} FROM {{db}}.{rollup}{where}",
    )]
    return (*create, *stop, *fill, *swap)


MIGRATIONS += (Migration(5, "two per-minute roll-ups instead of six aggregates (the old names become views)",
                         _rollups()),)
