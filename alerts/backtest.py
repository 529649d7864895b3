"""Scores the detector on a labelled benchmark: recall, precision, false alarms per subject-month, delay.

* an alert is a *firing* event (one per episode); it is true when it fires while a labelled surge is running
  or within ``grace_steps`` after it ended, false otherwise;
* recall counts eligible surges with a true alert, per class: busy topics (factor >= 3, >= 20 documents per
  window) and sparse subjects (>= 10 negative documents per 15 minutes); smaller surges are reported apart and,
  when alerted on, are not false alarms;
* delay = (end of the window that fired - surge start) / window length, so an alert at the close of the first
  window containing the surge start scores between 0 and 1;
* false alarms per subject-month are measured on the quiet streams (neutral bursts, copy storms and drift, no
  surge): false alerts / (streams x days / 30); ``false_alarms_per_topic_month`` is the busy topics' share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alerts.benchmark import SPARSE, Benchmark, Stream, minute_time, minutes_to_steps
from alerts.detection import DetectorConfig
from alerts.evaluation import StepSeries, prior_rates, replay
from alerts.tracker import FIRING, Subject


@dataclass
class _Tally:
    eligible: int = 0
    detected: int = 0
    small: int = 0
    small_hit: int = 0
    false_quiet: int = 0
    false_surge: int = 0
    quiet_days: int = 0
    alerts: int = 0
    delays: list[float] = field(default_factory=list)


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
    recall_sparse: float
    false_alarms_per_subject_month: float
    false_alarms_per_sparse_subject_month: float
    median_delay_sparse_windows: float
    eligible_sparse_bursts: int
    detected_sparse_bursts: int
    small_sparse_bursts: int
    small_sparse_bursts_detected: int
    false_alarms_quiet_sparse: int
    quiet_sparse_subject_days: int

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def _series(bench: Benchmark, stream: Stream, step: int) -> StepSeries:
    n, k = stream.stories()
    kind = "entity" if stream.kind == SPARSE else "topic"
    return StepSeries(Subject(kind, stream.name), bench.start, step, minutes_to_steps(n, step),
                      minutes_to_steps(k, step), docs=minutes_to_steps(stream.n, step),
                      negative_docs=minutes_to_steps(stream.k, step))


def run(bench: Benchmark, config: DetectorConfig | None = None, grace_steps: int = 2) -> BacktestResult:
    config = config or DetectorConfig(step_minutes=bench.step_minutes)
    step = config.step_minutes
    first = bench.warmup_days * 1440 // step
    all_series = [_series(bench, stream, step) for stream in bench.streams]
    priors = prior_rates(config, all_series, first)
    tallies = {False: _Tally(), True: _Tally()}  # by "is sparse"
    for stream, series in zip(bench.streams, all_series, strict=True):
        tally = tallies[stream.kind == SPARSE]
        events, _ = replay(config, series, first, prior_rate=priors.get(series.subject.kind))
        fired = [e.at for e in events if e.status == FIRING]
        tally.alerts += len(fired)
        matched = np.zeros(len(fired), dtype=bool)
        for surge in stream.surges:
            begin = minute_time(bench, surge.start_minute)
            until = minute_time(bench, surge.start_minute + surge.minutes + grace_steps * step)
            hits = [i for i, at in enumerate(fired) if begin < at <= until]
            matched[hits] = True
            if surge.eligible:
                tally.eligible += 1
                if hits:
                    tally.detected += 1
                    tally.delays.append((fired[hits[0]] - begin).total_seconds() / 60 / step)
            else:
                tally.small += 1
                tally.small_hit += bool(hits)
        false = int((~matched).sum())
        if stream.quiet:
            tally.false_quiet += false
            tally.quiet_days += bench.days
        else:
            tally.false_surge += false
    busy, sparse = tallies[False], tallies[True]
    alerts = busy.alerts + sparse.alerts
    false = busy.false_quiet + busy.false_surge + sparse.false_quiet + sparse.false_surge
    quiet_days = busy.quiet_days + sparse.quiet_days
    return BacktestResult(
        recall=_ratio(busy.detected, busy.eligible),
        precision=_ratio(alerts - false, alerts),
        false_alarms_per_topic_month=_ratio(busy.false_quiet, busy.quiet_days / 30),
        median_delay_windows=float(np.median(busy.delays)) if busy.delays else float("nan"),
        eligible_surges=busy.eligible, detected_surges=busy.detected, alerts=alerts, false_alarms_quiet=busy.false_quiet,
        false_alarms_in_surge_streams=busy.false_surge + sparse.false_surge, small_surges=busy.small,
        small_surges_detected=busy.small_hit, quiet_topic_days=busy.quiet_days,
        recall_sparse=_ratio(sparse.detected, sparse.eligible),
        false_alarms_per_subject_month=_ratio(busy.false_quiet + sparse.false_quiet, quiet_days / 30),
        false_alarms_per_sparse_subject_month=_ratio(sparse.false_quiet, sparse.quiet_days / 30),
        median_delay_sparse_windows=float(np.median(sparse.delays)) if sparse.delays else float("nan"),
        eligible_sparse_bursts=sparse.eligible, detected_sparse_bursts=sparse.detected,
        small_sparse_bursts=sparse.small, small_sparse_bursts_detected=sparse.small_hit,
        false_alarms_quiet_sparse=sparse.false_quiet, quiet_sparse_subject_days=sparse.quiet_days,
    )


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")
