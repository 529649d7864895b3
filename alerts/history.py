"""Alerts, delivery attempts and detector state, recorded in ClickHouse (the same Store as the documents).

Exactly-once delivery rests on three facts:

* ids are deterministic: an event's id derives from (subject, episode start, status, severity), a message's
  from its events, a delivery's from (message, channel); re-detecting the same data yields the same ids;
* the outbox row (state ``pending``, with the full message) is written *before* anything is sent and the
  detector checkpoint only after it, so a crash between detection and delivery re-detects into the same ids
  and finds the outbox already there;
* the delivery log is append-only and ordered by (attempt, stage), not by clocks: ``sending`` before a send,
  ``delivered`` / ``retry`` / ``failed`` after it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.message import Message
from alerts.tracker import Event, Subject, TrackState
from ingest.store import Store

log = logging.getLogger(__name__)

EVENTS = "alert_events"
DELIVERIES = "alert_deliveries"
STATE = "alert_state"
CHECKPOINT = Subject("runner", "checkpoint")
STAGES = {"pending": 0, "sending": 1, "retry": 2, "delivered": 3, "failed": 3}

DDL = (
    f"""CREATE TABLE IF NOT EXISTS {EVENTS} (
    event_id String, alert_id String, subject_kind LowCardinality(String), subject_name String,
    status LowCardinality(String), severity LowCardinality(String), at DateTime64(3, 'UTC'),
    started DateTime64(3, 'UTC'), stats String, recorded_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(recorded_at) ORDER BY event_id""",
    f"""CREATE TABLE IF NOT EXISTS {DELIVERIES} (
    delivery_id String, message_id String, channel String, event_ids Array(String),
    state LowCardinality(String), attempt UInt16, stage UInt8, not_before DateTime64(3, 'UTC'),
    error String, message String, recorded_at DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (delivery_id, attempt, stage, recorded_at)""",
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
    subject_kind LowCardinality(String), subject_name String, state String, step DateTime64(3, 'UTC'),
    recorded_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(recorded_at) ORDER BY (subject_kind, subject_name)""",
)


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    message_id: str
    channel: str
    event_ids: tuple[str, ...]
    state: str
    attempt: int
    not_before: datetime
    message: Message


def migrate(store: Store) -> None:
    """Create the alert tables if missing (idempotent). Run after ``store.migrate()``."""
    for statement in DDL:
        store.command(statement)


def _now() -> datetime:
    return datetime.now(UTC)


def record_events(store: Store, events: list[Event]) -> None:
    rows = [
        [e.event_id, e.alert_id, e.subject.kind, e.subject.name, e.status, e.severity.label, e.at, e.started,
         json.dumps(e.stats), _now()]
        for e in events
    ]
    if rows:
        _insert(store, EVENTS, _EVENT_COLUMNS, rows)


def events(store: Store) -> list[dict[str, Any]]:
    return store.query(f"SELECT * EXCEPT recorded_at FROM {EVENTS} FINAL ORDER BY at, subject_kind, subject_name")


def existing_deliveries(store: Store, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = store.query(f"SELECT DISTINCT delivery_id FROM {DELIVERIES} WHERE has({{ids:Array(String)}}, delivery_id)",
                       {"ids": ids})
    return {r["delivery_id"] for r in rows}


def enqueue(store: Store, items: list[tuple[str, str, Message, datetime]]) -> int:
    """Write ``pending`` outbox rows for (delivery_id, channel, message, not_before) not already there."""
    known = existing_deliveries(store, [d for d, *_ in items])
    rows = [
        [d, m.id, channel, list(m.event_ids), "pending", 0, 0, not_before, "", _dump(m), _now()]
        for d, channel, m, not_before in items if d not in known
    ]
    if rows:
        _insert(store, DELIVERIES, _DELIVERY_COLUMNS, rows)
    return len(rows)


def mark(store: Store, d: Delivery, state: str, attempt: int, not_before: datetime | None = None,
         error: str = "") -> None:
    row = [d.delivery_id, d.message_id, d.channel, list(d.event_ids), state, attempt, STAGES[state],
           not_before or d.not_before, error[:500], "", _now()]
    _insert(store, DELIVERIES, _DELIVERY_COLUMNS, [row])


def open_deliveries(store: Store) -> list[Delivery]:
    """Deliveries whose latest record is pending, sending (a crash mid-send) or retry."""
    rows = store.query(
        "SELECT d.delivery_id AS id, any(d.message_id) AS mid, any(d.channel) AS ch, any(d.event_ids) AS eids, "
        "argMax(d.state, (d.attempt, d.stage)) AS last_state, max(d.attempt) AS attempts, "
        "argMax(d.not_before, (d.attempt, d.stage)) AS due, argMaxIf(d.message, d.stage, d.stage = 0) AS body "
        f"FROM {DELIVERIES} AS d GROUP BY d.delivery_id HAVING last_state IN ('pending', 'sending', 'retry') "
        "ORDER BY due, id"
    )
    return [
        Delivery(r["id"], r["mid"], r["ch"], tuple(r["eids"]), r["last_state"], int(r["attempts"]), r["due"],
                 _load(r["body"]))
        for r in rows
    ]


def deliveries(store: Store) -> list[dict[str, Any]]:
    """Every attempt record (for reports and tests), oldest first."""
    return store.query(f"SELECT * EXCEPT message FROM {DELIVERIES} ORDER BY delivery_id, attempt, stage")


def delivered_since(store: Store, channel: str, since: datetime) -> int:
    rows = store.query(
        f"SELECT count() AS n FROM {DELIVERIES} WHERE channel = {{c:String}} AND state = 'delivered' "
        "AND recorded_at >= {since:DateTime64(6, 'UTC')}", {"c": channel, "since": since})
    return int(rows[0]["n"])


def load_state(store: Store) -> tuple[datetime | None, dict[Subject, TrackState]]:
    rows = store.query(f"SELECT subject_kind, subject_name, state, step FROM {STATE} FINAL")
    checkpoint, states = None, {}
    for r in rows:
        subject = Subject(r["subject_kind"], r["subject_name"])
        if subject == CHECKPOINT:
            checkpoint = r["step"]
        else:
            states[subject] = TrackState(**json.loads(r["state"]))
    return checkpoint, states


def save_state(store: Store, states: dict[Subject, TrackState], step: datetime) -> None:
    """Write the tracker states, then the checkpoint (in that order: the checkpoint commits the step)."""
    now = _now()
    rows = [[s.kind, s.name, json.dumps(st.to_dict()), step, now] for s, st in states.items()]
    _insert(store, STATE, _STATE_COLUMNS, rows)
    _insert(store, STATE, _STATE_COLUMNS, [[CHECKPOINT.kind, CHECKPOINT.name, "{}", step, _now()]])


_T3, _T6 = "DateTime64(3, 'UTC')", "DateTime64(6, 'UTC')"
_EVENT_COLUMNS = (("event_id", "String"), ("alert_id", "String"), ("subject_kind", "String"),
                  ("subject_name", "String"), ("status", "String"), ("severity", "String"), ("at", _T3),
                  ("started", _T3), ("stats", "String"), ("recorded_at", _T6))
_DELIVERY_COLUMNS = (("delivery_id", "String"), ("message_id", "String"), ("channel", "String"),
                     ("event_ids", "Array(String)"), ("state", "String"), ("attempt", "UInt16"), ("stage", "UInt8"),
                     ("not_before", _T3), ("error", "String"), ("message", "String"), ("recorded_at", _T6))
_STATE_COLUMNS = (("subject_kind", "String"), ("subject_name", "String"), ("state", "String"), ("step", _T3),
                  ("recorded_at", _T6))


def _insert(store: Store, table: str, columns: tuple[tuple[str, str], ...], rows: list[list[Any]]) -> None:
    """Insert rows through server-side parameters (the Store has no bulk insert for foreign tables; our rows are
    few: a handful of events and attempts per step)."""
    names = ", ".join(name for name, _ in columns)
    values = ", ".join(f"{{{name}:{kind}}}" for name, kind in columns)
    for row in rows:
        store.command(f"INSERT INTO {table} ({names}) SELECT {values}",
                      {name: value for (name, _), value in zip(columns, row, strict=True)})


def _dump(m: Message) -> str:
    return json.dumps({"title": m.title, "text": m.text, "markdown": m.markdown, "html": m.html,
                       "event_ids": list(m.event_ids), "payload": m.payload}, default=str)


def _load(raw: str) -> Message:
    d = json.loads(raw)
    return Message(d["title"], d["text"], d["markdown"], d["html"], tuple(d["event_ids"]), d.get("payload", {}))
