"""The always-on alerts worker: detect on every completed step, record, enqueue, deliver; idempotent across
restarts (see ``history`` for why a crash anywhere neither loses nor repeats a notification).

One pass (``Runner.step``):
1. load the checkpoint (last processed step end) and the tracker states;
2. read per-step counts from the checkpoint's day minus ``history_days`` up to ``until``;
3. score every unprocessed step, advance each subject's tracker, collect events;
4. record the events, group them per (step, channel, release time) into messages, write the outbox;
5. save tracker states, then the checkpoint;
6. send what is due.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from alerts import delivery, history, source
from alerts.evaluation import prior_rates, score_series, step_stats
from alerts.message import Evidence, compose
from alerts.rules import Rules, console_rules
from alerts.settings import AlertsSettings, alerts_settings
from alerts.errors import AlertsError
from alerts.tracker import Event, TrackState, advance
from ingest.store import Store, StoreError

log = logging.getLogger(__name__)


def align(at: datetime, minutes: int) -> datetime:
    """``at`` rounded down to a step boundary (steps are aligned on the Unix epoch, like toStartOfInterval)."""
    seconds = minutes * 60
    ts = int(at.timestamp())
    return datetime.fromtimestamp(ts - ts % seconds, UTC)


def delivery_id(message_id: str, channel: str) -> str:
    return hashlib.sha256(f"{message_id}|{channel}".encode()).hexdigest()[:24]


class Runner:
    def __init__(self, store: Store, rules: Rules, settings: AlertsSettings) -> None:
        self.store, self.rules, self.settings = store, rules, settings
        self.config = settings.detector()
        history.migrate(store)

    def detect(self, until: datetime, since: datetime | None = None) -> list[Event]:
        """Steps 1-5 of a pass; returns the new events (empty when ``until`` is already processed)."""
        step = timedelta(minutes=self.config.step_minutes)
        until = align(until, self.config.step_minutes)
        checkpoint, states = history.load_state(self.store)
        begin = checkpoint or align(since or until - step, self.config.step_minutes)
        if begin >= until:
            return []
        day0 = begin.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day0 - timedelta(days=self.config.history_days)
        first = int((begin - start) / step)
        events: list[Event] = []
        subjects = source.series(self.store, start, until, self.config.step_minutes,
                                 entities=self.settings.entities, min_entity_negatives=self.config.min_negative,
                                 sectors=self.settings.sectors)
        priors = prior_rates(self.config, subjects, first)
        for series in subjects:
            state = states.setdefault(series.subject, TrackState())
            scores = score_series(self.config, series, first, priors.get(series.subject.kind))
            for j in range(scores.pvalue.size):
                stats = step_stats(scores, j, series, first + j)
                stats["window_minutes"] *= self.config.step_minutes
                event = advance(self.config, state, series.subject, series.step_end(first + j),
                                bool(scores.significant[j]), bool(scores.holding[j]), int(scores.severity[j]), stats)
                if event is not None:
                    events.append(event)
        history.record_events(self.store, events)
        queued = self._enqueue(events)
        history.save_state(self.store, states, until)
        log.info("processed steps %s..%s: %d events, %d new outbox entries", begin, until, len(events), queued)
        if queued and self.settings.hold_before_send_seconds > 0:
            log.warning("outbox written; holding %.1fs before sending (fault-injection hook)",
                        self.settings.hold_before_send_seconds)
            time.sleep(self.settings.hold_before_send_seconds)
        return events

    def _enqueue(self, events: list[Event]) -> int:
        groups: dict[tuple[datetime, str, datetime], list[Event]] = defaultdict(list)
        for event in events:
            for channel, release in self.rules.targets(event):
                groups[(event.at, channel.name, release)].append(event)
        evidence: dict[str, Evidence] = {}
        items = []
        for (_, channel, release), members in sorted(groups.items()):
            for e in members:
                if e.event_id not in evidence:
                    evidence[e.event_id] = source.evidence(self.store, e)
            message = compose([(e, evidence[e.event_id]) for e in members], self.settings.grafana_url)
            items.append((delivery_id(message.id, channel), channel, message, release))
        return history.enqueue(self.store, items)

    def step(self, until: datetime | None = None, since: datetime | None = None) -> list[Event]:
        events = self.detect(until or datetime.now(UTC), since)
        delivery.deliver_due(self.store, self.rules, self.settings)
        return events

    def run_forever(self, since: datetime | None = None) -> None:
        log.info("alerts runner started (step %d min, poll %.0fs)", self.config.step_minutes,
                 self.settings.poll_seconds)
        while True:
            try:
                self.step(since=since)
            except (AlertsError, StoreError) as exc:  # ClickHouse down, bad rules at send time...: retry later
                log.error("alerts pass failed, retrying in %.0fs: %s", self.settings.poll_seconds, exc)
            time.sleep(self.settings.poll_seconds)


def run_once(
    store: Store, since: datetime, until: datetime, rules: Rules | None = None,
    settings: AlertsSettings | None = None,
) -> list[Event]:
    """Detect on the steps of ``[since, until)`` not yet processed, deliver what is due, return the new events.

    For ``finmon demo``: ``run_once(store, start, end)`` routes everything to the console channel (the log).
    """
    settings = settings or alerts_settings()
    rules = rules or console_rules()
    runner = Runner(store, rules, settings)
    events = runner.detect(until, since)
    delivery.drain(store, rules, settings, max_wait=settings.send_timeout_seconds)
    return events
