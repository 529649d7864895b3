"""`finmon alerts run` killed (SIGKILL) between detection and delivery, then restarted: every alert is
delivered exactly once. The store is served over ClickHouse's HTTP interface (tests/fixtures/clickhouse.py's
front) so that the worker runs as a real separate process; the receiver counts deliveries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alerts import history
from ingest.store import Store
from tests.alerts.seeding import STEP, SURGE, SURGE_STEPS, seed

FINMON = str(Path(sys.executable).parent / "finmon")
RULES = """
channels:
  hook: {type: webhook, url_env: T_HOOK_URL, secret_env: T_HOOK_SECRET}
routes:
  - channels: [hook]
"""


@pytest.mark.slow
def test_kill_between_detection_and_delivery_delivers_exactly_once(clickhouse_http, receiver, tmp_path) -> None:
    store = Store.open(clickhouse_http, "finmon_restart")
    store.migrate()
    seed(store)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    args = [FINMON, "alerts", "run", "--dsn", clickhouse_http, "--database", "finmon_restart", "--rules", str(rules),
            "--since", (SURGE - 4 * STEP).isoformat(), "--until", (SURGE + (SURGE_STEPS + 2) * STEP).isoformat()]
    env = {**os.environ, "T_HOOK_URL": f"{receiver.url}/hook", "T_HOOK_SECRET": "s", "FINMON_LOG_LEVEL": "INFO"}

    worker = subprocess.Popen(args, env={**env, "FINMON_ALERTS_HOLD_BEFORE_SEND_SECONDS": "300"},
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        for line in worker.stderr:  # type: ignore[union-attr]
            if "outbox written" in line or time.monotonic() > deadline:
                break
        assert worker.poll() is None, "the worker exited before the hold"
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(30)
    assert worker.returncode == -signal.SIGKILL
    pending = history.open_deliveries(store)
    assert pending and receiver.requests == []  # detected and queued, nothing sent

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    ids = [r.headers["x-finmon-delivery"] for r in receiver.requests]
    assert sorted(ids) == sorted(d.delivery_id for d in pending)  # each queued alert sent once, none added

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and len(receiver.requests) == len(ids)
    assert history.open_deliveries(store) == []
    store.close()
