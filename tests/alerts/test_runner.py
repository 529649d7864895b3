"""The runner on a real (embedded) ClickHouse: detection from the aggregates, the outbox, grouping, retries
with backoff, quiet hours, rate limits, and no second send when a pass is repeated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts import delivery, history
from alerts.rules import parse
from alerts.runner import Runner
from alerts.settings import alerts_settings
from tests.alerts.seeding import STEP, SURGE, SURGE_STEPS, seed

UNTIL = SURGE + (SURGE_STEPS + 2) * STEP
SINCE = SURGE - 4 * STEP


@pytest.fixture
def seeded(store):
    seed(store)
    return store


def _rules(url: str, **route):
    return parse({
        "channels": {"hook": {"type": "webhook", "url_env": "T_HOOK_URL", "secret_env": "T_HOOK_SECRET"},
                     "ops": {"type": "webhook", "url_env": "T_OPS_URL", "rate_limit": {"count": 1, "per_minutes": 60}}},
        "routes": [{"channels": ["hook"], **route}],
    })


@pytest.fixture
def env(receiver, monkeypatch):
    monkeypatch.setenv("T_HOOK_URL", f"{receiver.url}/hook")
    monkeypatch.setenv("T_HOOK_SECRET", "hook-secret")
    monkeypatch.setenv("T_OPS_URL", f"{receiver.url}/ops")
    return receiver


def test_surge_is_detected_grouped_delivered_once(seeded, env) -> None:
    settings = alerts_settings(backoff_seconds=0.0)
    runner = Runner(seeded, _rules(env.url), settings)
    events = runner.detect(UNTIL, SINCE)
    firing = {(e.subject.kind, e.subject.name) for e in events if e.status == "firing"}
    assert ("topic", "Financials") in firing and ("entity", "WFC") in firing
    assert all(e.subject.name != "Markets" for e in events)  # the quiet topic stays quiet
    assert min(e.at for e in events if e.status == "firing") <= SURGE + 2 * STEP
    assert delivery.deliver_due(seeded, runner.rules, settings)["delivered"] >= 1

    first = [r for r in env.requests if r.path == "/hook"]
    payload = first[0].json()
    subjects = {a["subject"]["name"] for a in payload["alerts"]}
    assert {"Financials", "WFC"} <= subjects  # one grouped message for the step, not one per subject
    alert = next(a for a in payload["alerts"] if a["subject"]["name"] == "Financials")
    assert alert["stats"]["share"] > 2 * alert["stats"]["expected_share"]
    assert any("Wells Fargo hit by new sales scandal" in h["title"] and h["url"] for h in alert["headlines"])
    assert alert["entities"][0][0] == "Wells Fargo"

    # A second pass over the same time (e.g. after a restart) finds nothing new and sends nothing.
    assert runner.detect(UNTIL, SINCE) == []
    delivery.deliver_due(seeded, runner.rules, settings)
    assert len([r for r in env.requests if r.path == "/hook"]) == len(first)
    states = {r["delivery_id"]: r["state"] for r in history.deliveries(seeded)}
    assert set(states.values()) == {"delivered"}
    assert {e["subject_name"] for e in history.events(seeded)} >= {"Financials", "WFC"}


def test_failed_sends_are_retried_with_backoff_then_delivered(seeded, env) -> None:
    seen: dict[str, int] = {}

    def flaky(req):  # every delivery fails twice (HTTP 503), then is accepted
        key = req.headers["x-finmon-delivery"]
        seen[key] = seen.get(key, 0) + 1
        return (503, b"") if seen[key] <= 2 else (200, b"{}")

    env.respond = flaky
    settings = alerts_settings(backoff_seconds=30.0, max_attempts=5)
    runner = Runner(seeded, _rules(env.url, match={"topics": ["Financials"]}), settings)
    assert runner.detect(UNTIL, SINCE)
    opened = history.open_deliveries(seeded)
    now = max(d.not_before for d in opened)
    n = len(opened)
    assert delivery.deliver_due(seeded, runner.rules, settings, now)["retry"] == n
    assert delivery.deliver_due(seeded, runner.rules, settings, now + timedelta(seconds=10))["retry"] == 0  # backoff
    assert delivery.deliver_due(seeded, runner.rules, settings, now + timedelta(seconds=31))["retry"] == n
    assert delivery.deliver_due(seeded, runner.rules, settings, now + timedelta(seconds=200))["delivered"] == n
    first = opened[0].delivery_id
    rows = [r for r in history.deliveries(seeded) if r["delivery_id"] == first]
    assert [(r["state"], r["attempt"]) for r in rows] == [
        ("pending", 0), ("sending", 1), ("retry", 1), ("sending", 2), ("retry", 2), ("sending", 3), ("delivered", 3)]
    assert sorted(seen.values()) == [3] * n  # the same idempotency key on every attempt of a delivery


def test_rejected_send_fails_without_retry(seeded, env) -> None:
    env.respond = lambda req: (400, b"bad")
    settings = alerts_settings()
    runner = Runner(seeded, _rules(env.url, match={"topics": ["Financials"]}), settings)
    runner.detect(UNTIL, SINCE)
    n = len(history.open_deliveries(seeded))
    counts = delivery.deliver_due(seeded, runner.rules, settings, UNTIL + timedelta(days=1))
    assert n >= 1 and counts["failed"] == n and counts["retry"] == 0
    assert history.open_deliveries(seeded) == [] and len(env.requests) == n
    failed = [r for r in history.deliveries(seeded) if r["state"] == "failed"]
    assert failed and "HTTP 400" in failed[0]["error"]


def test_quiet_hours_defer_and_rate_limits_hold_back(seeded, env) -> None:
    rules = parse({
        "channels": {"ops": {"type": "webhook", "url_env": "T_OPS_URL", "rate_limit": {"count": 1, "per_minutes": 60}}},
        "routes": [{"channels": ["ops"], "match": {"min_severity": "warning"},
                    "quiet_hours": {"start": "13:00", "end": "18:00", "tz": "UTC", "allow": []}}],
    })
    settings = alerts_settings()
    runner = Runner(seeded, rules, settings)
    runner.detect(UNTIL, SINCE)
    due = history.open_deliveries(seeded)
    assert due and all(d.not_before == SURGE.replace(hour=18) for d in due)
    assert delivery.deliver_due(seeded, rules, settings, SURGE.replace(hour=17))["delivered"] == 0
    counts = delivery.deliver_due(seeded, rules, settings, SURGE.replace(hour=18, minute=1))
    # Wall-clock rate window: one per hour goes now, the others wait (they are not dropped).
    assert counts["delivered"] == 1 and counts["deferred"] == len(due) - 1
    assert len(history.open_deliveries(seeded)) == len(due) - 1
