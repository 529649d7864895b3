"""Runs the detector over a per-step count series, exactly the same way live (runner) and offline (backtest).

The baseline for every step of a UTC day is fitted once, on the ``history_days`` before that day began, so a
live run and a replay of the same data score each step identically (and produce the same alert ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from alerts import baseline
from alerts.detection import DetectorConfig, Scores, score
from alerts.tracker import Event, Subject, TrackState, advance


@dataclass
class StepSeries:
    """Documents (``n``) and negative documents (``k``) per step for one subject, from ``start`` on."""

    subject: Subject
    start: datetime  # start of step 0 (UTC, aligned to the step)
    step_minutes: int
    n: np.ndarray
    k: np.ndarray

    def __post_init__(self) -> None:
        self.n, self.k = np.asarray(self.n, dtype=float), np.asarray(self.k, dtype=float)
        if self.n.shape != self.k.shape or (self.k > self.n).any() or (self.k < 0).any():
            raise ValueError(f"{self.subject}: counts must satisfy 0 <= negatives <= documents")

    def step_end(self, i: int) -> datetime:
        return self.start + timedelta(minutes=self.step_minutes * (i + 1))

    def calendar(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hour of day, weekend flag and day number of every step's start."""
        minutes = self.start.hour * 60 + self.start.minute + self.step_minutes * np.arange(self.n.size)
        day = minutes // 1440
        hour = (minutes % 1440) // 60
        weekend = ((self.start.weekday() + day) % 7) >= 5
        return hour, weekend.astype(int), day


def score_series(config: DetectorConfig, series: StepSeries, first: int) -> Scores:
    """Score steps ``first..end`` of the series (earlier steps are history only)."""
    hour, weekend, day = series.calendar()
    per_day = 1440 // series.step_minutes
    history = config.history_days * per_day
    T = series.n.size
    lo = max(0, first - max(config.spans) + 1)
    eshare, eneg, rho = (np.zeros(T) for _ in range(3))
    for d in np.unique(day[lo:]):
        idx = np.nonzero(day == d)[0]
        begin = int(idx[0])
        h0 = max(0, begin - history)
        fitted = baseline.fit(series.n[h0:begin], series.k[h0:begin], hour[h0:begin], weekend[h0:begin])
        eshare[idx], eneg[idx] = fitted.expected(hour[idx], weekend[idx])
        rho[idx] = fitted.rho
    eshare = baseline.level_adjusted(series.n, series.k, eshare)
    scores = score(config, series.n[lo:], series.k[lo:], eshare[lo:], eneg[lo:], rho[lo:])
    cut = first - lo
    return Scores(**{f: getattr(scores, f)[cut:] for f in Scores.__dataclass_fields__})


def step_stats(scores: Scores, i: int) -> dict[str, float]:
    """The numbers a message quotes for step ``i`` of ``scores``."""
    return {
        "window_minutes": float(scores.span[i]),
        "docs": float(scores.docs[i]),
        "negatives": float(scores.negatives[i]),
        "share": float(scores.share[i]),
        "expected_share": float(scores.expected_share[i]),
        "expected_negatives": float(scores.expected_negatives[i]),
        "ratio": float(scores.ratio[i]),
        "count_ratio": float(scores.count_ratio[i]),
        "pvalue": float(scores.pvalue[i]),
    }


def replay(
    config: DetectorConfig, series: StepSeries, first: int, state: TrackState | None = None
) -> tuple[list[Event], TrackState]:
    """Run detector and tracker over steps ``first..end``; return the events and the final state."""
    state = state or TrackState()
    scores = score_series(config, series, first)
    events: list[Event] = []
    for j in range(scores.pvalue.size):
        stats = step_stats(scores, j)
        stats["window_minutes"] *= series.step_minutes
        event = advance(
            config, state, series.subject, series.step_end(first + j), bool(scores.significant[j]),
            bool(scores.holding[j]), int(scores.severity[j]), stats,
        )
        if event is not None:
            events.append(event)
    return events, state
