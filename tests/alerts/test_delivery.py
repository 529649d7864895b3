"""Delivery edge cases on a real (embedded) ClickHouse and a local HTTP receiver: a channel that never accepts
runs out of attempts and is marked failed (not retried forever), and a delivery a crash left in ``sending`` is
sent again under the same id (the receiver can deduplicate), then closed."""

from __future__ import annotations

import logging
from datetime import timedelta


from alerts import delivery, history
from alerts.runner import Runner
from alerts.settings import alerts_settings
from tests.alerts.test_runner import SINCE, UNTIL, _rules, env, seeded  # noqa: F401  (fixtures)


def test_a_delivery_out_of_attempts_is_failed_not_retried_forever(seeded, env, caplog) -> None:  # noqa: F811
    env.respond = lambda req: (503, b"")
    settings = alerts_settings(backoff_seconds=1.0, max_attempts=3)
    runner = Runner(seeded, _rules(env.url, match={"topics": ["Financials"]}), settings)
    assert runner.detect(UNTIL, SINCE)
    opened = history.open_deliveries(seeded)
    n, now = len(opened), max(d.not_before for d in opened)
    outcomes = [delivery.deliver_due(seeded, runner.rules, settings, now + timedelta(hours=i)) for i in range(5)]
    assert [o["retry"] for o in outcomes] == [n, n, 0, 0, 0]
    assert [o["failed"] for o in outcomes] == [0, 0, n, 0, 0]
    assert history.open_deliveries(seeded) == []
    assert len(env.requests) == 3 * n  # exactly max_attempts sends each, then nothing more
    rows = [r for r in history.deliveries(seeded) if r["delivery_id"] == opened[0].delivery_id]
    assert [(r["state"], r["attempt"]) for r in rows][-2:] == [("sending", 3), ("failed", 3)]
    assert "HTTP 503" in rows[-1]["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_delivery_left_in_sending_is_resent_under_the_same_id(seeded, env, caplog) -> None:  # noqa: F811
    settings = alerts_settings(backoff_seconds=0.0)
    runner = Runner(seeded, _rules(env.url, match={"topics": ["Financials"]}), settings)
    assert runner.detect(UNTIL, SINCE)
    opened = history.open_deliveries(seeded)
    crashed = opened[0]
    history.mark(seeded, crashed, "sending", 1)  # the process died after recording "sending", mid-send
    [left] = [d for d in history.open_deliveries(seeded) if d.delivery_id == crashed.delivery_id]
    assert left.state == "sending" and left.attempt == 1

    with caplog.at_level(logging.WARNING, logger="alerts.delivery"):
        counts = delivery.deliver_due(seeded, runner.rules, settings, UNTIL + timedelta(days=1))
    assert counts["delivered"] == len(opened) and history.open_deliveries(seeded) == []
    sent = [r.headers["x-finmon-delivery"] for r in env.requests]
    assert sorted(sent) == sorted(d.delivery_id for d in opened)  # resent once, under its own id
    rows = [r for r in history.deliveries(seeded) if r["delivery_id"] == crashed.delivery_id]
    assert [(r["state"], r["attempt"]) for r in rows] == [("pending", 0), ("sending", 1), ("sending", 2),
                                                          ("delivered", 2)]
    assert any("interrupted mid-send" in r.getMessage() and crashed.delivery_id in r.getMessage()
               for r in caplog.records)
    # a later pass sends nothing again
    delivery.deliver_due(seeded, runner.rules, settings, UNTIL + timedelta(days=2))
    assert len(env.requests) == len(opened)
