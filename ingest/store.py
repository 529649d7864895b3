"""ClickHouse storage: open a store (embedded chdb or a server), migrate it, write enriched batches, query it.

``Store.open("chdb:///abs/dir")`` runs ClickHouse in-process (one process per data dir: a second process fails
to lock it); ``Store.open("http(s)://user:pass@host:port")`` talks to a server. Both use clickhouse-connect's
client API, so the same SQL runs in the demo, in the tests and in production.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from inference.errors import FinmonError
from inference.decoding.prediction import EntitySpan
from ingest.records import EnrichedDocument
from ingest.schema import (  # noqa: F401  (re-exported: the table names are imported from here)
    DOCUMENTS,
    ENTITY_MENTIONS,
    ENTITY_ID_MINUTE,
    ENTITY_MINUTE,
    KG_ENTITIES,
    KG_RELATIONS,
    MIGRATIONS,
    MIGRATIONS_DDL,
    MIGRATIONS_TABLE,
    PREDICTIONS,
    SECTOR_MINUTE,
    TOPIC_MINUTE,
)

log = logging.getLogger(__name__)

TICKER = "TICKER"  # the rule-based cashtag entity type of inference.labels.ENTITY_TYPES
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SPACES = re.compile(r"\s+")

DOCUMENT_COLUMNS = (
    "doc_id", "source", "kind", "published_at", "title", "text", "url", "author", "lang", "meta", "content_hash",
    "schema_version", "ingested_at",
)
PREDICTION_COLUMNS = (
    "doc_id", "model_version", "published_at", "source", "kind", "topic", "topic_score", "sentiment",
    "sentiment_score", "p_negative", "p_neutral", "p_positive", "topic_probs", "truncated", "ingested_at",
)
MENTION_COLUMNS = (
    "doc_id", "published_at", "source", "kind", "topic", "start", "end", "label", "text", "entity_key", "company_id",
    "score", "sentiment", "ingested_at", "name", "entity_kind", "sector",
)


class StoreError(FinmonError):
    """ClickHouse refused or failed a statement. ``code``/``name`` are ClickHouse's (e.g. 60, UNKNOWN_TABLE)."""

    def __init__(self, message: str, *, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class StoreUnavailable(StoreError):
    """ClickHouse cannot be reached (server down, embedded data dir locked by another process): back off, retry."""


def entity_key(span: EntitySpan) -> str:
    """The key entities are counted under: the linker's ``entity_id`` (graph id or normal name), else the linked
    company id, else the casefolded surface form.

    ``$aapl`` and ``$AAPL`` are one ticker; ``Goldman  Sachs`` and ``goldman sachs`` one organisation.
    """
    if span.entity_id:
        return span.entity_id
    if span.company_id:
        return span.company_id
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", span.text)).strip()
    if span.label == TICKER:
        return text.lstrip("$").upper()
    return text.casefold()


@contextlib.contextmanager
def _errors(action: str) -> Iterator[None]:
    """Translate clickhouse-connect/chdb errors into the finmon tree, keeping ClickHouse's code."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(f"{action}: {exc}", code=getattr(exc, "code", None)) from exc
    except ClickHouseError as exc:
        code, name = getattr(exc, "code", None), getattr(exc, "name", None)
        if "Unable to open the chdb engine" in str(exc):
            raise StoreUnavailable(f"{action}: {exc} (is another process using this data dir?)", code=code) from exc
        raise StoreError(f"{action}: {exc}", code=code, name=name) from exc


class Store:
    """One ClickHouse database. Not thread-safe for concurrent writers; use one Store per thread/task."""

    def __init__(self, client: Client, database: str, dsn: str) -> None:
        self._client = client
        self.database = database
        self.dsn = _masked(dsn)  # for logs: the password never leaves open()

    @classmethod
    def open(cls, dsn: str, database: str = "finmon") -> Store:
        """Connect; use ``database`` when it exists (``migrate`` creates it). Raises StoreUnavailable/StoreError."""
        if not _IDENTIFIER.match(database):
            raise StoreError(f"invalid database name {database!r}")
        if not dsn.startswith(("chdb:", "http://", "https://")):
            raise StoreError(f"unsupported ClickHouse DSN {_masked(dsn)!r}: use chdb:///abs/dir or http(s)://...")
        with _errors(f"opening {_masked(dsn)}"):
            client = clickhouse_connect.get_client(dsn=dsn, tz_mode="aware")
        store = cls(client, database, dsn)
        with _errors("checking database"):
            if client.command("EXISTS DATABASE {db:Identifier}", parameters={"db": database}):
                client.database = database
        log.info("opened ClickHouse store %s database=%s", _masked(dsn), database)
        return store

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded; return the versions applied now (empty when up to date)."""
        db = self.database
        with _errors("migrating"):
            self._client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
            self._client.database = db
            self._client.command(MIGRATIONS_DDL.format(db=db))
            done = {row[0] for row in self._client.query(f"SELECT version FROM {db}.{MIGRATIONS_TABLE}").result_rows}
            applied = []
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                for statement in migration.statements:
                    self._client.command(statement.format(db=db))
                self._client.insert(
                    f"{db}.{MIGRATIONS_TABLE}", [[migration.version, migration.name, datetime.now(UTC)]],
                    column_names=["version", "name", "applied_at"],
                )
                log.info("applied migration %d (%s) to %s", migration.version, migration.name, db)
                applied.append(migration.version)
        return applied

    def applied_versions(self) -> list[int]:
        rows = self.query(f"SELECT DISTINCT version FROM {MIGRATIONS_TABLE} ORDER BY version")
        return [row["version"] for row in rows]

    # -- writes ---------------------------------------------------------------------------------------------------

    def write_batch(self, docs: Sequence[EnrichedDocument]) -> None:
        """Insert a batch: one insert per table. Idempotent on doc_id (the last copy in a batch wins).

        Returns only after ClickHouse acknowledged every insert, so the caller may then commit offsets. When it
        raises, nothing is lost by retrying the whole batch: rows already written are replaced, not added.
        ``documents`` is written LAST: a document id found there (the worker seeds its dedup from it after a crash
        and skips those ids) means its predictions, mentions and aggregate rows are all in.
        """
        unique = list({d.doc.id: d for d in docs}.values())
        if not unique:
            return
        mentions = [row for d in unique for row in _mention_rows(d)]
        with _errors(f"writing {len(unique)} documents"):
            self._client.insert(PREDICTIONS, [_prediction_row(d) for d in unique], column_names=PREDICTION_COLUMNS)
            if mentions:
                self._client.insert(ENTITY_MENTIONS, mentions, column_names=MENTION_COLUMNS)
            self._client.insert(DOCUMENTS, [_document_row(d) for d in unique], column_names=DOCUMENT_COLUMNS)
        log.debug("wrote %d documents, %d entity mentions", len(unique), len(mentions))

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows into one of the schema's tables (reference data such as the knowledge graph)."""
        with _errors(f"inserting {len(rows)} rows into {table}"):
            self._client.insert(table, list(rows), column_names=list(columns))

    # -- reads ----------------------------------------------------------------------------------------------------

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT with server-side parameters (``{name:Type}`` placeholders); rows as dicts."""
        with _errors("query"):
            result = self._client.query(sql, parameters=dict(parameters or {}))
            return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (OPTIMIZE, SYSTEM ...), parameterised like ``query``."""
        with _errors("command"):
            return self._client.command(sql, parameters=dict(parameters or {}))

    def ping(self) -> bool:
        return bool(self._client.ping())


def _document_row(d: EnrichedDocument) -> list[Any]:
    doc = d.doc
    return [
        doc.id, doc.source, doc.kind, doc.published_at, doc.title or "", doc.text, doc.url or "", doc.author or "",
        doc.lang or "", json.dumps(doc.meta, ensure_ascii=False, default=str), d.content_hash, doc.schema_version,
        d.ingested_at,
    ]


def _prediction_row(d: EnrichedDocument) -> list[Any]:
    p, doc = d.prediction, d.doc
    probs = p.sentiment_probs
    return [
        doc.id, p.model_version, doc.published_at, doc.source, doc.kind, p.topic, p.topic_probs.get(p.topic, 0.0),
        p.sentiment, p.sentiment_score, probs.get("negative", 0.0), probs.get("neutral", 0.0),
        probs.get("positive", 0.0), dict(p.topic_probs), int(p.truncated), d.ingested_at,
    ]


def _mention_rows(d: EnrichedDocument) -> Iterator[list[Any]]:
    p, doc = d.prediction, d.doc
    for e in p.entities:
        yield [
            doc.id, doc.published_at, doc.source, doc.kind, p.topic, e.start, e.end, e.label, e.text, entity_key(e),
            e.company_id or "", e.score, p.sentiment, d.ingested_at, e.name or e.text, entity_kind(e), e.sector or "",
        ]


def entity_kind(span: EntitySpan) -> str:
    """company / place / institution for a graph link (by its id), else the span's label."""
    key = span.entity_id or ""
    if span.company_id and key in ("", span.company_id):
        return "company"
    return {"loc": "place", "org": "institution"}.get(key.partition(":")[0] if ":" in key else "", span.label)


def _masked(dsn: str) -> str:
    """The DSN with any password replaced, for logs and errors."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", dsn)
