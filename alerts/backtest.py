"""Scores the detector on a labelled benchmark: recall, precision, false alarms per topic-month, delay.

* an alert is a *firing* event (one per episode); it is true when it fires while a labelled surge is running
  or within ``grace_steps`` after it ended, false otherwise;
* recall counts eligible surges (factor >= 3, >= 20 documents per window) with a true alert; smaller surges
  are reported apart and, when alerted on, are not false alarms;
* delay = (end of the window that fired - surge start) / window length, so an alert at the close of the first
  window containing the surge start scores between 0 and 1;
* false alarms per topic-month are measured on the quiet streams: false alerts / (topics x days / 30).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alerts.benchmark import Benchmark, minute_time, minutes_to_steps
from alerts.detection import DetectorConfig
from alerts.evaluation import StepSeries, replay
from alerts.tracker import FIRING, Subject


@dataclass(frozen=True)
class BacktestResult:
    recall: float
    precision: float
    false_alarms_per_topic_month: float
    median_delay_windows: float
    eligible_surges: int
    detected_surges: int
    alerts: int
    false_alarms_quiet: int
    false_alarms_in_surge_streams: int
    small_surges: int
    small_surges_detected: int
    quiet_topic_days: int

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def run(bench: Benchmark, config: DetectorConfig | None = None, grace_steps: int = 2) -> BacktestResult:
    config = config or DetectorConfig(step_minutes=bench.step_minutes)
    step = config.step_minutes
    first = bench.warmup_days * 1440 // step
    delays: list[float] = []
    eligible = detected = alerts = fa_quiet = fa_surge = small = small_hit = quiet_days = 0
    for stream in bench.streams:
        series = StepSeries(Subject("topic", stream.name), bench.start, step,
                            minutes_to_steps(stream.n, step), minutes_to_steps(stream.k, step))
        events, _ = replay(config, series, first)
        fired = [e.at for e in events if e.status == FIRING]
        alerts += len(fired)
        matched = np.zeros(len(fired), dtype=bool)
        for surge in stream.surges:
            begin = minute_time(bench, surge.start_minute)
            until = minute_time(bench, surge.start_minute + surge.minutes + grace_steps * step)
            hits = [i for i, at in enumerate(fired) if begin < at <= until]
            matched[hits] = True
            if surge.eligible:
                eligible += 1
                if hits:
                    detected += 1
                    delays.append((fired[hits[0]] - begin).total_seconds() / 60 / step)
            else:
                small += 1
                small_hit += bool(hits)
        false = int((~matched).sum())
        if stream.quiet:
            fa_quiet += false
            quiet_days += bench.days
        else:
            fa_surge += false
    true_alerts = alerts - fa_quiet - fa_surge
    return BacktestResult(
        recall=detected / eligible if eligible else float("nan"),
        precision=true_alerts / alerts if alerts else float("nan"),
        false_alarms_per_topic_month=fa_quiet / (quiet_days / 30) if quiet_days else float("nan"),
        median_delay_windows=float(np.median(delays)) if delays else float("nan"),
        eligible_surges=eligible, detected_surges=detected, alerts=alerts, false_alarms_quiet=fa_quiet,
        false_alarms_in_surge_streams=fa_surge, small_surges=small, small_surges_detected=small_hit,
        quiet_topic_days=quiet_days,
    )
