"""Surge detection: is the negative talk in the latest window(s) far above the baseline?

Two tests. On a busy window (at least ``busy_docs`` distinct stories) the share test decides, as it is exact
and well calibrated there; on a thinner window both must agree: the count test is the evidence (at ``alpha``),
the share test a guard (at ``share_guard``).

The share test: for each window span (e.g. 15, 30 and 60 minutes ending now), the window's negative count given its
volume against a **beta-binomial** whose mean is the baseline's negative share (seasonal, scaled by the local
level, see ``baseline``) and whose intra-class correlation is the over-dispersion measured on history. It is a
binomial widened by the drift real news flow shows, so it stays exact for sparse counts (a 20-document window)
and does not fire on every busy afternoon. Conditioning on the window's volume makes a burst of ordinary news
(every sentiment up) a non-event, which a Poisson test on the negative count alone would page on.

The count test: the window's negative count against the subject's expected negative count for those hours
under a **negative binomial** (a gamma-Poisson: the rate is known only as well as the history and a prior from
similar subjects let us know it, and it drifts from day to day). It is what makes a sparse subject testable at
all: twelve negative documents in 15 minutes on a subject with two documents an hour is extreme as a count,
while the share test alone is fragile on a dozen documents. The share test keeps a burst of ordinary news
(every sentiment up) from paging; the count test keeps a lifted share on a handful of documents from paging.

Both p-values are Bonferroni-adjusted for the number of spans. A window is *significant* when its p-value is
below ``alpha`` and it passes the gates: at least ``min_negative`` negative documents (the floor that replaces
a floor on all documents, so a quiet subject can alert), a negative share at least ``min_ratio`` times the
baseline share and a negative count at least ``min_ratio`` times the baseline count for those hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import stats


class Severity(IntEnum):
    WARNING = 1
    MAJOR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Severity:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {name!r} (use {', '.join(s.label for s in cls)})") from None


@dataclass(frozen=True)
class DetectorConfig:
    step_minutes: int = 15  # the evaluation step, the "window" of the delay metric
    spans: tuple[int, ...] = (1, 2, 4)  # window lengths in steps: 15, 30, 60 minutes
    alpha: float = 1e-5  # family-wise significance needed to open an alert
    hold_alpha: float = 1e-2  # hysteresis: an open alert stays open while the window is this significant
    hold_ratio: float = 1.2  # ... and its negative share at least this lifted
    min_negative: int = 8  # negatives in the window: the floor (on negatives, not on all documents)
    busy_docs: int = 20  # stories in a window from which the share test alone decides
    share_guard: float = 1e-3  # below that, the share test's level: a guard against "more of everything"
    min_ratio: float = 1.5  # negative rate (or share) against baseline needed to open
    min_rho: float = 0.002  # floor of the over-dispersion (a short history can measure it as ~0)
    resolve_after: int = 2  # calm steps before an open alert is resolved
    cooldown: int = 4  # steps after a resolution during which a new episode opens only as critical
    history_days: int = 14
    major_ratio: float = 2.0
    critical_ratio: float = 3.0
    count_shape: float = 20.0  # negative-binomial shape of the day-to-day drift of a negative rate
    prior_steps: float = 96.0  # weight (in steps of exposure) of the prior rate from similar subjects


@dataclass(frozen=True)
class Scores:
    """Per-step results (arrays aligned with the scored steps)."""

    pvalue: np.ndarray  # Bonferroni-adjusted smallest p-value (the larger of the two tests' in that window)
    share_pvalue: np.ndarray
    count_pvalue: np.ndarray
    span: np.ndarray  # steps in the winning window
    docs: np.ndarray
    negatives: np.ndarray
    share: np.ndarray
    expected_share: np.ndarray
    expected_negatives: np.ndarray
    ratio: np.ndarray  # negative share against the expected share in the winning window
    count_ratio: np.ndarray  # negative count against the baseline's expected count for those hours
    significant: np.ndarray  # opens (or escalates) an alert
    holding: np.ndarray  # keeps an open alert open
    severity: np.ndarray  # 0 when not significant, else a Severity value


def score(
    config: DetectorConfig,
    n: np.ndarray,
    k: np.ndarray,
    expected_share: np.ndarray,
    expected_negatives: np.ndarray,
    rho: np.ndarray | float,
    rate_shape: np.ndarray | float = np.inf,
) -> Scores:
    """Score every step of a series; windows end at each step and look ``span`` steps back.

    ``rate_shape`` is the gamma shape of what is known of the negative rate (prior pseudo-counts plus the
    negatives seen in history): a thin history widens the count test beyond the drift ``count_shape``."""
    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    T = n.size
    rho = np.maximum(np.broadcast_to(np.asarray(rho, dtype=float), (T,)), config.min_rho)
    shape = 1.0 / rho - 1.0
    r = np.minimum(np.broadcast_to(np.asarray(rate_shape, dtype=float), (T,)), config.count_shape)
    best = np.full(T, np.inf)
    fields = ("span", "docs", "neg", "share", "eshare", "emu", "ratio", "cratio", "gate", "pshare", "pcount")
    out = {f: np.zeros(T) for f in fields}
    for s in config.spans:
        ns, ks = _window_sum(n, s), _window_sum(k, s)
        ps = _window_sum(n * expected_share, s) / np.maximum(ns, 1e-9)
        ps = np.where(ns > 0, ps, expected_share)
        mus = _window_sum(expected_negatives, s)
        share = np.divide(ks, ns, out=np.zeros(T), where=ns > 0)
        ratio, count_ratio = share / np.maximum(ps, 1e-9), ks / np.maximum(mus, 1e-9)
        # The tail is only worth computing where the share is lifted enough to open or hold an alert.
        test = (ns > 0) & (ratio >= config.hold_ratio)
        p_share = np.ones(T)
        p_share[test] = stats.betabinom.sf(ks[test] - 1, ns[test].astype(int), ps[test] * shape[test],
                                           (1 - ps[test]) * shape[test]) * len(config.spans)
        p_count = np.ones(T)
        counted = test & (count_ratio >= config.hold_ratio)
        mu = np.maximum(mus[counted], 1e-6)
        p_count[counted] = stats.nbinom.sf(ks[counted] - 1, r[counted], r[counted] / (r[counted] + mu)) * len(
            config.spans)
        # thin window: the count is the evidence (at alpha), the share a guard (at share_guard), so the share's
        # p-value is scaled to make its guard level equal to alpha before the two are combined
        p = np.where(ns >= config.busy_docs, p_share,
                     np.maximum(p_share * config.alpha / config.share_guard, p_count))
        gate = (ks >= config.min_negative) & (ratio >= config.min_ratio) & (count_ratio >= config.min_ratio)
        better = p < best
        best = np.where(better, p, best)
        values = (s, ns, ks, share, ps, mus, ratio, count_ratio, gate, p_share, p_count)
        for name, val in zip(fields, values):
            out[name] = np.where(better, val, out[name])
    best = np.minimum(best, 1.0)
    significant = out["gate"].astype(bool) & (best < config.alpha)
    cratio = out["cratio"]
    severity = np.where(significant, int(Severity.WARNING), 0)
    severity = np.where(significant & (cratio >= config.major_ratio) & (best < config.alpha * 1e-2),
                        int(Severity.MAJOR), severity)
    severity = np.where(significant & (cratio >= config.critical_ratio) & (best < config.alpha * 1e-4),
                        int(Severity.CRITICAL), severity)
    return Scores(
        pvalue=best, share_pvalue=np.minimum(out["pshare"], 1.0), count_pvalue=np.minimum(out["pcount"], 1.0),
        span=out["span"].astype(int), docs=out["docs"], negatives=out["neg"], share=out["share"],
        expected_share=out["eshare"], expected_negatives=out["emu"], ratio=out["ratio"], count_ratio=cratio,
        significant=significant, holding=(out["pshare"] < config.hold_alpha) & (out["ratio"] >= config.hold_ratio),
        severity=severity,
    )


def _window_sum(x: np.ndarray, span: int) -> np.ndarray:
    """Sum of the ``span`` values ending at each position (shorter at the start of the series)."""
    c = np.concatenate(([0.0], np.cumsum(x)))
    idx = np.arange(1, x.size + 1)
    return c[idx] - c[np.maximum(idx - span, 0)]
