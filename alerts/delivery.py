"""Sends what the outbox holds: retries with exponential backoff, per-channel rate limits, quiet hours (via
``not_before``), and the ``sending``/``delivered`` records around every attempt (see ``history``)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from alerts import history
from alerts.errors import NotifyError, RulesError
from alerts.notifiers import sender
from alerts.rules import Rules
from alerts.settings import AlertsSettings
from ingest.store import Store

log = logging.getLogger(__name__)


def backoff(settings: AlertsSettings, attempt: int) -> timedelta:
    return timedelta(seconds=min(settings.backoff_seconds * 2 ** (attempt - 1), settings.backoff_max_seconds))


def deliver_due(store: Store, rules: Rules, settings: AlertsSettings, now: datetime | None = None) -> dict[str, int]:
    """One pass over the open deliveries that are due; returns counts by outcome."""
    now = now or datetime.now(UTC)
    counts = {"delivered": 0, "retry": 0, "failed": 0, "deferred": 0}
    for d in history.open_deliveries(store):
        channel = rules.channels.get(d.channel)
        if d.not_before > now:
            counts["deferred"] += 1
            continue
        if channel is None:
            history.mark(store, d, "failed", d.attempt + 1, error=f"channel {d.channel!r} no longer in the rules")
            counts["failed"] += 1
            continue
        if channel.rate_count and history.delivered_since(
            store, channel.name, now - timedelta(minutes=channel.rate_minutes)
        ) >= channel.rate_count:
            counts["deferred"] += 1  # stays pending; the next pass tries again
            continue
        if d.state == "sending":
            log.warning("delivery %s to %s was interrupted mid-send; sending again with the same id",
                        d.delivery_id, d.channel)
        attempt = d.attempt + 1
        history.mark(store, d, "sending", attempt)
        try:
            sender(channel)(channel, d.message, d.delivery_id, settings.send_timeout_seconds)
        except (NotifyError, RulesError) as exc:
            retryable = isinstance(exc, NotifyError) and exc.retryable and attempt < settings.max_attempts
            state = "retry" if retryable else "failed"
            history.mark(store, d, state, attempt, now + backoff(settings, attempt) if retryable else None, str(exc))
            log.warning("delivery %s to %s attempt %d: %s (%s)", d.delivery_id, d.channel, attempt, exc, state)
            counts[state] += 1
            continue
        history.mark(store, d, "delivered", attempt)
        log.info("delivered %s to %s (attempt %d): %s", d.delivery_id, d.channel, attempt, d.message.title)
        counts["delivered"] += 1
    return counts


def drain(store: Store, rules: Rules, settings: AlertsSettings, max_wait: float) -> dict[str, int]:
    """Deliver until nothing falls due within ``max_wait`` seconds (one-shot runs and the demo)."""
    total = {"delivered": 0, "retry": 0, "failed": 0, "deferred": 0}
    deadline = time.monotonic() + max_wait
    while True:
        counts = deliver_due(store, rules, settings)
        for key in ("delivered", "retry", "failed"):
            total[key] += counts[key]
        total["deferred"] = counts["deferred"]
        left = deadline - time.monotonic()
        soon = datetime.now(UTC) + timedelta(seconds=max(left, 0.0))
        if left <= 0 or not any(d.not_before <= soon for d in history.open_deliveries(store)):
            return total
        time.sleep(min(1.0, left))
