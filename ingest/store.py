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
from clickhouse_connect.driver.exceptions import ClickHouseError, DataError, OperationalError
from clickhouse_connect.driver.httputil import get_pool_manager

from inference.errors import FinmonError
from inference.decoding.prediction import EntitySpan
from ingest.records import EnrichedDocument
from ingest.settings import ClickHouseSettings
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
    PREDICTION_WRITES,
    PREDICTIONS,
    SECTOR_MINUTE,
    TOPIC_MINUTE,
)

log = logging.getLogger(__name__)

TICKER = "TICKER"  # the rule-based cashtag entity type of inference.labels.ENTITY_TYPES
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SPACES = re.compile(r"\s+")
# ClickHouse error codes that blame the rows themselves (a value it cannot parse or hold, a violated constraint):
# retrying the same rows cannot succeed, so they are dead-lettered instead of backed off on.
REFUSED_CODES = frozenset({
    6,  # CANNOT_PARSE_TEXT
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    469,  # VIOLATED_CONSTRAINT
})

DOCUMENT_COLUMNS = (
    "doc_id", "source", "kind", "published_at", "title", "text", "url", "author", "lang", "meta", "content_hash",
    "schema_version", "ingested_at", "story_id",
)
PREDICTION_COLUMNS = (
    "doc_id", "model_version", "published_at", "source", "kind", "topic", "topic_score", "sentiment",
    "sentiment_score", "p_negative", "p_neutral", "p_positive", "topic_probs", "truncated", "ingested_at",
    "story_id",
)
MENTION_COLUMNS = (
    "doc_id", "published_at", "source", "kind", "topic", "start", "end", "label", "text", "entity_key", "company_id",
    "score", "sentiment", "ingested_at", "story_id", "name", "entity_kind", "sector",
)


class StoreError(FinmonError):
    """ClickHouse refused or failed a statement. ``code``/``name`` are ClickHouse's (e.g. 60, UNKNOWN_TABLE)."""

    def __init__(self, message: str, *, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class StoreUnavailable(StoreError):
    """ClickHouse cannot be reached (server down, embedded data dir locked by another process): back off, retry."""


class StoreRefused(StoreError):
    """ClickHouse refused the rows themselves (``REFUSED_CODES``, or a value the client cannot encode)."""


class StoreAuthenticationFailed(StoreError):
    """ClickHouse refused the user or password (code 516, AUTHENTICATION_FAILED)."""


_AUTHENTICATION_FAILED = 516


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
        if code == _AUTHENTICATION_FAILED or "AUTHENTICATION_FAILED" in str(exc):
            raise StoreAuthenticationFailed(f"{action}: ClickHouse refused the user or password (check "
                                            "FINMON_INGEST_CLICKHOUSE_USERNAME and the password)",
                                            code=_AUTHENTICATION_FAILED, name="AUTHENTICATION_FAILED") from None
        if "Unable to open the chdb engine" in str(exc):
            raise StoreUnavailable(f"{action}: {exc} (is another process using this data dir?)", code=code) from exc
        if code in REFUSED_CODES or (code is None and isinstance(exc, DataError)):
            raise StoreRefused(f"{action}: {exc}", code=code, name=name) from exc
        raise StoreError(f"{action}: {exc}", code=code, name=name) from exc


class Store:
    """One ClickHouse database. Not thread-safe for concurrent writers; use one Store per thread/task."""

    def __init__(self, client: Client, database: str, dsn: str) -> None:
        self._client = client
        self._pool: Any = None  # a urllib3 pool manager this store made (https with its own CA), closed with it
        self.database = database
        self.dsn = _masked(dsn)  # for logs: the password never leaves open()

    @classmethod
    def open(cls, dsn: str, database: str = "finmon", *, username: str | None = None, password: str | None = None,
             ca_cert: str | None = None, verify: bool = True) -> Store:
        """Connect; use ``database`` when it exists (``migrate`` creates it). Raises StoreUnavailable/StoreError.

        ``username``/``password`` override those of the DSN; ``ca_cert`` (a PEM file) and ``verify`` apply to https.
        """
        if not _IDENTIFIER.match(database):
            raise StoreError(f"invalid database name {database!r}")
        if not dsn.startswith(("chdb:", "http://", "https://")):
            raise StoreError(f"unsupported ClickHouse DSN {_masked(dsn)!r}: use chdb:///abs/dir or http(s)://...")
        options: dict[str, Any] = {}
        if not dsn.startswith("chdb:"):
            # clickhouse-connect takes TLS from ``secure`` or the port (443/8443), NOT from the DSN's scheme: without
            # this an https:// DSN on another port would send the password in clear over http
            options = {"username": username, "password": password or "", "verify": verify,
                       "secure": dsn.startswith("https://")}
            if ca_cert or not verify:
                # our own pool: closing one clickhouse-connect made breaks on the urllib3-future that
                # grafana-client's niquests installs over urllib3 (PoolManager.pools has no lock there)
                options["pool_mgr"] = get_pool_manager(verify=verify, ca_cert=ca_cert)
        with _errors(f"opening {_masked(dsn)}"):
            client = clickhouse_connect.get_client(dsn=dsn, tz_mode="aware", **options)
        store = cls(client, database, dsn)
        store._pool = options.get("pool_mgr")
        with _errors("checking database"):
            if client.command("EXISTS DATABASE {db:Identifier}", parameters={"db": database}):
                client.database = database
        log.info("opened ClickHouse store %s database=%s", _masked(dsn), database)
        return store

    @classmethod
    def connect(cls, settings: ClickHouseSettings, dsn: str | None = None, database: str | None = None) -> Store:
        """``open`` with the ClickHouse settings of ``settings`` (``dsn``/``database`` override theirs)."""
        password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None
        return cls.open(dsn or settings.clickhouse_dsn, database or settings.clickhouse_database,
                        username=settings.clickhouse_username, password=password,
                        ca_cert=settings.clickhouse_ca_file, verify=settings.clickhouse_verify)

    def close(self) -> None:
        self._client.close()
        if self._pool is not None:
            self._pool.clear()

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

        The FIRST prediction of a document wins: a replay (crash before the offset commit, rebalance) may
        re-predict a document differently (another model version, another server), and writing that again
        would count it under both labels in the per-minute aggregates. So predictions already stored are not
        written again, and mentions of a document whose prediction is stored carry that prediction's labels.
        """
        unique = list({d.doc.id: d for d in docs}.values())
        if not unique:
            return
        with _errors(f"writing {len(unique)} documents"):
            predicted, mentioned = self._earlier_writes([d.doc.id for d in unique])
            fresh = [d for d in unique if d.doc.id not in predicted]
            mentions = [row for d in unique if d.doc.id not in mentioned
                        for row in _mention_rows(d, predicted.get(d.doc.id))]
            if fresh:
                self._client.insert(PREDICTIONS, [_prediction_row(d) for d in fresh], column_names=PREDICTION_COLUMNS)
            if mentions:
                self._client.insert(ENTITY_MENTIONS, mentions, column_names=MENTION_COLUMNS)
            self._client.insert(DOCUMENTS, [_document_row(d) for d in unique], column_names=DOCUMENT_COLUMNS)
        if len(fresh) < len(unique):
            log.info("%d of %d documents were predicted and stored before (a replay): kept their first prediction",
                     len(unique) - len(fresh), len(unique))
        log.debug("wrote %d documents, %d entity mentions", len(unique), len(mentions))

    def _earlier_writes(self, ids: list[str]) -> tuple[dict[str, tuple[str, str]], set[str]]:
        """Of ``ids``: {id: (topic, sentiment)} of those with a stored prediction, and those with stored mentions."""
        result = self._client.query(
            f"SELECT 'p' AS what, doc_id, any(topic) AS topic, any(sentiment) AS sentiment FROM {PREDICTIONS} "
            "WHERE doc_id IN {ids:Array(String)} GROUP BY doc_id "
            f"UNION ALL SELECT 'm' AS what, doc_id, '' AS topic, '' AS sentiment FROM {ENTITY_MENTIONS} "
            "WHERE doc_id IN {ids:Array(String)} GROUP BY doc_id",
            parameters={"ids": ids},
        )
        predicted = {row[1]: (row[2], row[3]) for row in result.result_rows if row[0] == "p"}
        return predicted, {row[1] for row in result.result_rows if row[0] == "m"}
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
        d.ingested_at, d.story_id or doc.id,
    ]


def _prediction_row(d: EnrichedDocument) -> list[Any]:
    p, doc = d.prediction, d.doc
    probs = p.sentiment_probs
    return [
        doc.id, p.model_version, doc.published_at, doc.source, doc.kind, p.topic, p.topic_probs.get(p.topic, 0.0),
        p.sentiment, p.sentiment_score, probs.get("negative", 0.0), probs.get("neutral", 0.0),
        probs.get("positive", 0.0), dict(p.topic_probs), int(p.truncated), d.ingested_at, d.story_id or doc.id,
    ]


def _mention_rows(d: EnrichedDocument, labels: tuple[str, str] | None = None) -> Iterator[list[Any]]:
    """Mention rows of ``d``, under ``labels`` (topic, sentiment) when given, else under its own prediction's."""
    p, doc = d.prediction, d.doc
    topic, sentiment = labels or (p.topic, p.sentiment)
    for e in p.entities:
        yield [
            doc.id, doc.published_at, doc.source, doc.kind, topic, e.start, e.end, e.label, e.text, entity_key(e),
            e.company_id or "", e.score, sentiment, d.ingested_at, d.story_id or doc.id, e.name or e.text,
            entity_kind(e), e.sector or "",
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
