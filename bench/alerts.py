"""`finmon bench alerts`: one detection pass over 1,000 subjects (topics and entities alike).

The pass is what ``alerts.runner.Runner.detect`` does per subject after reading the counts: score every new
step of a 15-minute series with its 14-day baseline (``score_series``) and advance its alert state
(``advance``). Series are synthetic counts shaped like the bundled benchmark's; reading them from ClickHouse is
the store's cost and is not in this figure.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from alerts.detection import DetectorConfig
from alerts.evaluation import StepSeries, score_series, step_stats
from alerts.tracker import Subject, TrackState, advance
from bench.report import Report, cpu_seconds


def synthetic(subjects: int, days: int, step_minutes: int, seed: int = 0) -> list[StepSeries]:
    rng = np.random.default_rng(seed)
    steps = days * 1440 // step_minutes
    start = (datetime.now(UTC) - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for i in range(subjects):
        n = rng.poisson(rng.uniform(1, 60), steps).astype(float)
        k = rng.binomial(n.astype(int), rng.uniform(0.1, 0.4)).astype(float)
        out.append(StepSeries(Subject("entity" if i % 5 else "topic", f"s{i}", ""), start, step_minutes, n, k))
    return out


def run(subjects: int, days: int, new_steps: int = 4) -> Report:
    config = DetectorConfig()
    series = synthetic(subjects, days, config.step_minutes)
    report = Report("alerts", ["subjects", "steps each", "new steps", "seconds", "subjects/s", "CPU s"])
    states = {s.subject: TrackState() for s in series}
    first = series[0].n.size - new_steps
    t0, c0, events = time.perf_counter(), cpu_seconds(), 0
    for s in series:
        scores = score_series(config, s, first)
        for j in range(scores.pvalue.size):
            event = advance(config, states[s.subject], s.subject, s.step_end(first + j), bool(scores.significant[j]),
                            bool(scores.holding[j]), int(scores.severity[j]), step_stats(scores, j))
            events += event is not None
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    report.add(subjects, series[0].n.size, new_steps, seconds, subjects / seconds, cpu)
    report.figures.update({"subjects": subjects, "pass_seconds": seconds, "pass_cpu_seconds": cpu, "events": events})
    return report


def main(args: argparse.Namespace) -> Report:
    return run(args.subjects, args.days)
