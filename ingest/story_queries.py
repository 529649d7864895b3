"""Read queries over stories (``ingest.stories``): distinct stories per bucket from the per-minute story
aggregates, and the stories behind a count, with their documents, outlets and first link. Parameterised; time
ranges half-open ``[start, end)`` as in ``ingest.queries``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingest.queries import _bucket, _range
from ingest.schema import DOCUMENTS, ENTITY_MENTIONS, ENTITY_STORY_MINUTE, PREDICTIONS, TOPIC_STORY_MINUTE
from ingest.store import Store

_RANGE = "m.minute >= {start:DateTime64(3, 'UTC')} AND m.minute < {end:DateTime64(3, 'UTC')}"
_DOC_RANGE = "published_at >= {start:DateTime64(3, 'UTC')} AND published_at < {end:DateTime64(3, 'UTC')}"


def topic_story_counts(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, bucket_seconds: int | None = 60,
) -> list[dict[str, Any]]:
    """Distinct stories per [bucket ×] topic × sentiment (column ``stories``)."""
    bucket, params = _bucket(bucket_seconds)
    keys = (["bucket"] if bucket else []) + ["topic", "sentiment"]
    sql = (f"SELECT {bucket}topic, sentiment, uniqExactMerge(m.stories) AS stories FROM {TOPIC_STORY_MINUTE} AS m "
           f"WHERE {_RANGE} GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}")
    return store.query(sql, {**_range(start, end), **params})


def entity_story_counts(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, bucket_seconds: int | None = 60,
    entity_keys: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Distinct stories per [bucket ×] entity_key × sentiment, whatever topic each document was given."""
    bucket, params = _bucket(bucket_seconds)
    keys = (["bucket"] if bucket else []) + ["entity_key", "sentiment"]
    sql = (f"SELECT {bucket}entity_key, sentiment, uniqExactMerge(m.stories) AS stories "
           f"FROM {ENTITY_STORY_MINUTE} AS m WHERE {_RANGE} "
           "AND (empty({keys:Array(String)}) OR has({keys:Array(String)}, m.entity_key)) "
           f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}")
    return store.query(sql, {**_range(start, end), **params, "keys": list(entity_keys)})


def stories(
    store: Store, start: datetime | None = None, end: datetime | None = None, *, topic: str | None = None,
    entity_key: str | None = None, sentiment: str | None = None, limit: int = 5,
) -> list[dict[str, Any]]:
    """The stories behind a count, largest first: ``story_id``, ``documents``, ``outlets`` (distinct authors, or
    sources where a document has no author), and the ``title``/``text``/``url``/``source`` of its first document."""
    sql = (
        "SELECT if(d.story_id = '', d.doc_id, d.story_id) AS story, count() AS documents, "
        "uniqExact(if(d.author = '', d.source, d.author)) AS outlets, min(d.published_at) AS first_at, "
        "argMin(d.title, (d.published_at, d.doc_id)) AS title, argMin(d.text, (d.published_at, d.doc_id)) AS text, "
        "argMin(d.url, (d.published_at, d.doc_id)) AS url, argMin(d.source, (d.published_at, d.doc_id)) AS source "
        f"FROM (SELECT doc_id, story_id, author, source, published_at, title, text, url FROM {DOCUMENTS} FINAL "
        f"WHERE {_DOC_RANGE}) AS d "
        f"INNER JOIN (SELECT doc_id, topic, sentiment FROM {PREDICTIONS} FINAL WHERE {_DOC_RANGE}) AS p "
        "ON p.doc_id = d.doc_id "
        "WHERE ({topic:Nullable(String)} IS NULL OR p.topic = {topic:Nullable(String)}) "
        "AND ({sentiment:Nullable(String)} IS NULL OR p.sentiment = {sentiment:Nullable(String)}) "
        "AND ({entity:Nullable(String)} IS NULL OR d.doc_id IN "
        f"(SELECT doc_id FROM {ENTITY_MENTIONS} WHERE entity_key = {{entity:Nullable(String)}})) "
        "GROUP BY story ORDER BY documents DESC, first_at, story LIMIT {limit:UInt32}"
    )
    params = {"topic": topic, "sentiment": sentiment, "entity": entity_key, "limit": limit}
    rows = store.query(sql, {**_range(start, end), **params})
    for r in rows:
        r["story_id"] = r.pop("story")
    return rows


def story_count(store: Store, start: datetime | None = None, end: datetime | None = None) -> int:
    """Distinct stories among the documents published in ``[start, end)``."""
    rows = store.query(f"SELECT uniqExact(if(story_id = '', doc_id, story_id)) AS n FROM {DOCUMENTS} FINAL "
                       f"WHERE {_DOC_RANGE}", _range(start, end))
    return int(rows[0]["n"])
