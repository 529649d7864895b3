"""The soak's verdict (the soak itself runs for minutes: `python -m bench.soak`, figures in RELIABILITY.md)."""

from __future__ import annotations

from bench.soak import Report


def _passing() -> Report:
    return Report(10, 25.0, 22.5, produced=1000, stored_rows=1000, stored_distinct=1000, max_lag=60, recovery_s=4.0,
                  rss_start_mb=600.0, rss_end_mb=640.0, worker_exit=0)


def test_a_clean_soak_passes() -> None:
    assert _passing().failures(0.10) == []


def test_each_broken_promise_fails_the_soak() -> None:
    broken = {
        "RSS": {"rss_end_mb": 661.0}, "lag": {"recovery_s": None}, "ERROR": {"error_lines": ["x ERROR y"]},
        "stored": {"stored_rows": 1001}, "exited": {"worker_exit": 1},
    }
    for word, change in broken.items():
        report = _passing()
        for name, value in change.items():
            setattr(report, name, value)
        failures = report.failures(0.10)
        assert len(failures) == 1 and word in failures[0], (word, failures)
