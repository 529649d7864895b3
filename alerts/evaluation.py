"""Runs the detector over a per-step count series, exactly the same way live (runner) and offline (backtest).

The baseline for every step of a UTC day is fitted once, on the ``history_days`` before that day began, so a
live run and a replay of the same data score each step identically (and produce the same alert ids).

Only *observed* steps are history: the steps before the store held any document are unknown, not zero. (Fitting
on them divided a one-day-old subject's expected negatives by the 14 days of the history window: the
"19 against ~0.0 expected (760x)" of the first version.) The expected negative count is shrunk towards a prior
rate from similar subjects (``prior_rate``, per step), weighted as ``prior_steps`` steps of exposure, so a
subject with little history is compared with what its peers show instead of with nothing.
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
    """Distinct stories (``n``) and negative stories (``k``) per step for one subject, from ``start`` on.

    The tests count stories (a document without a story is its own story), so one article copied by thirty
    accounts is one piece of news; ``docs`` and ``negative_docs`` (documents, as stored) are what a message
    quotes next to them (default: the same as the story counts). Steps before ``observed`` are not history."""

    subject: Subject
    start: datetime  # start of step 0 (UTC, aligned to the step)
    step_minutes: int
    n: np.ndarray
    k: np.ndarray
    observed: int = 0  # first step with data (earlier steps are unknown, not empty)
    docs: np.ndarray | None = None
    negative_docs: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.n, self.k = np.asarray(self.n, dtype=float), np.asarray(self.k, dtype=float)
        if self.n.shape != self.k.shape or (self.k > self.n).any() or (self.k < 0).any():
            raise ValueError(f"{self.subject}: counts must satisfy 0 <= negatives <= documents")
        self.docs = self.n if self.docs is None else np.asarray(self.docs, dtype=float)
        self.negative_docs = self.k if self.negative_docs is None else np.asarray(self.negative_docs, dtype=float)

    def history_rate(self, end: int, history: int) -> float | None:
        """Negatives per observed step over the ``history`` steps before ``end`` (None: nothing observed)."""
        lo = max(self.observed, end - history)
        return float(self.k[lo:end].mean()) if end > lo else None

    def step_end(self, i: int) -> datetime:
        return self.start + timedelta(minutes=self.step_minutes * (i + 1))

    def calendar(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hour of day, weekend flag and day number of every step's start."""
        minutes = self.start.hour * 60 + self.start.minute + self.step_minutes * np.arange(self.n.size)
        day = minutes // 1440
        hour = (minutes % 1440) // 60
        weekend = ((self.start.weekday() + day) % 7) >= 5
        return hour, weekend.astype(int), day


def score_series(config: DetectorConfig, series: StepSeries, first: int, prior_rate: float | None = None) -> Scores:
    """Score steps ``first..end`` of the series (earlier steps are history only).

    ``prior_rate``: negatives per step of similar subjects (None: no prior, the subject's own history only)."""
    hour, weekend, day = series.calendar()
    per_day = 1440 // series.step_minutes
    history = config.history_days * per_day
    T = series.n.size
    lo = max(0, first - max(config.spans) + 1)
    eshare, eneg, rho, rate_shape = (np.zeros(T) for _ in range(4))
    for d in np.unique(day[lo:]):
        idx = np.nonzero(day == d)[0]
        begin = int(idx[0])
        h0 = min(max(series.observed, begin - history), begin)
        fitted = baseline.fit(series.n[h0:begin], series.k[h0:begin], hour[h0:begin], weekend[h0:begin])
        eshare[idx], eneg[idx] = fitted.expected(hour[idx], weekend[idx])
        rho[idx] = fitted.rho
        seen, steps = float(series.k[h0:begin].sum()), float(begin - h0)
        if prior_rate is not None:
            w = config.prior_steps
            eneg[idx] = (eneg[idx] * steps + prior_rate * w) / (steps + w)
            rate_shape[idx] = seen + prior_rate * w
        else:
            rate_shape[idx] = seen if steps else 0.0
    eshare = baseline.level_adjusted(series.n, series.k, eshare)
    scores = score(config, series.n[lo:], series.k[lo:], eshare[lo:], eneg[lo:], rho[lo:],
                   np.maximum(rate_shape[lo:], 0.5))
    cut = first - lo
    return Scores(**{f: getattr(scores, f)[cut:] for f in Scores.__dataclass_fields__})


def prior_rates(config: DetectorConfig, series: list[StepSeries], first: int) -> dict[str, float]:
    """The prior negative rate per subject kind: the median of the history rates of the subjects of that kind."""
    history = config.history_days * 1440 // config.step_minutes
    rates: dict[str, list[float]] = {}
    for s in series:
        rate = s.history_rate(first, history)
        if rate is not None:
            rates.setdefault(s.subject.kind, []).append(rate)
    return {kind: float(np.median(values)) for kind, values in rates.items()}


def step_stats(scores: Scores, i: int, series: StepSeries | None = None, at: int | None = None) -> dict[str, float]:
    """The numbers a message quotes for step ``i`` of ``scores`` (and, given the series and the step's index
    ``at`` in it, the documents behind the window's stories)."""
    extra: dict[str, float] = {}
    if series is not None and at is not None:
        lo = max(0, at - int(scores.span[i]) + 1)
        assert series.docs is not None and series.negative_docs is not None
        extra = {"documents": float(series.docs[lo : at + 1].sum()),
                 "negative_documents": float(series.negative_docs[lo : at + 1].sum())}
    return extra | {
        "window_minutes": float(scores.span[i]),
        "docs": float(scores.docs[i]),
        "negatives": float(scores.negatives[i]),
        "share": float(scores.share[i]),
        "expected_share": float(scores.expected_share[i]),
        "expected_negatives": float(scores.expected_negatives[i]),
        "ratio": float(scores.ratio[i]),
        "count_ratio": float(scores.count_ratio[i]),
        "pvalue": float(scores.pvalue[i]),
        "share_pvalue": float(scores.share_pvalue[i]),
        "count_pvalue": float(scores.count_pvalue[i]),
    }


def replay(
    config: DetectorConfig, series: StepSeries, first: int, state: TrackState | None = None,
    prior_rate: float | None = None,
) -> tuple[list[Event], TrackState]:
    """Run detector and tracker over steps ``first..end``; return the events and the final state."""
    state = state or TrackState()
    scores = score_series(config, series, first, prior_rate)
    events: list[Event] = []
    for j in range(scores.pvalue.size):
        stats = step_stats(scores, j, series, first + j)
        stats["window_minutes"] *= series.step_minutes
        event = advance(
            config, state, series.subject, series.step_end(first + j), bool(scores.significant[j]),
            bool(scores.holding[j]), int(scores.severity[j]), stats,
        )
        if event is not None:
            events.append(event)
    return events, state
