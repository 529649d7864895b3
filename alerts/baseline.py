"""What "normal" looks like for one topic or entity: the baseline the detector compares a window with.

Learnt from the trailing history of per-step counts (``n`` documents, ``k`` negative ones per step):

* the negative *share* by hour of day, shrunk towards the all-day share (empirical Bayes) so that sparse hours
  borrow strength instead of producing a noisy 0 % or 100 % baseline: seasonality appears as history allows;
* the expected negative *count* per step by (weekday/weekend, hour), shrunk the same way;
* a *local level*: today's negativity relative to the seasonal share, measured on the ``LEVEL_STEPS`` steps
  that end ``LEVEL_GAP`` steps before the window (so a fresh surge is not part of its own baseline). Real
  news flow drifts from day to day far more than a binomial allows; following that drift is what lets the
  detector be both quiet and quick;
* the over-dispersion left after that: the beta-binomial intra-class correlation ``rho``, measured on the
  same history with the same local level applied.

The fit is iterated: steps further than ``TRIM_Z`` from the previous fit (yesterday's incident, mostly) are
dropped and the baseline refitted, so that past surges inflate neither the share nor the over-dispersion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOURS = 24
TRIM_Z = 3.0
TRIM_ROUNDS = 3
MIN_RHO = 1e-4
MAX_RHO = 0.03  # more than this on 14 days of history is contamination by incidents, not drift
RHO_GRID = np.geomspace(MIN_RHO, MAX_RHO, 80)
MEDIAN_ABS_NORMAL = 0.6745
LEVEL_STEPS = 24  # 6 hours of 15-minute steps
LEVEL_GAP = 4  # the last hour is not part of the level
LEVEL_PRIOR = 30.0  # pseudo-negatives pulling a thin level towards 1


@dataclass(frozen=True)
class Baseline:
    share: np.ndarray  # (24,) negative share by hour of day
    negatives: np.ndarray  # (2, 24) expected negatives per step by (weekend, hour)
    rho: float  # beta-binomial intra-class correlation of the share around the local level
    steps: int  # history steps used

    def expected(self, hours: np.ndarray, weekend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected negative share and negative count of each step given its hour and day type."""
        hours = np.asarray(hours, dtype=int)
        return self.share[hours], self.negatives[np.asarray(weekend, dtype=int), hours]


def fit(
    n: np.ndarray,
    k: np.ndarray,
    hours: np.ndarray,
    weekend: np.ndarray,
    *,
    prior_docs: float = 200.0,
    prior_steps: float = 8.0,
) -> Baseline:
    """Fit a baseline on history arrays (one entry per step)."""
    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    hours, weekend = np.asarray(hours, dtype=int), np.asarray(weekend, dtype=int)
    keep = np.ones(n.shape, dtype=bool)
    fitted = _fit(n, k, hours, weekend, keep, prior_docs, prior_steps)
    for _ in range(TRIM_ROUNDS):
        p = level_adjusted(n, k, fitted.expected(hours, weekend)[0])
        var = n * p * (1 - p) * (1 + (n - 1) * fitted.rho)
        keep = np.abs(k - n * p) / np.sqrt(np.maximum(var, 1e-9)) < TRIM_Z
        fitted = _fit(n, k, hours, weekend, keep, prior_docs, prior_steps)
    return fitted


def level_adjusted(n: np.ndarray, k: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The seasonal share of each step scaled by the local level measured before it."""
    observed = _lagged_sum(np.asarray(k, dtype=float))
    expected = _lagged_sum(np.asarray(n, dtype=float) * share)
    level = (observed + LEVEL_PRIOR) / (expected + LEVEL_PRIOR)
    return np.clip(share * level, 1e-4, 0.99)


def _lagged_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the steps [t - LEVEL_GAP - LEVEL_STEPS, t - LEVEL_GAP) for every t."""
    c = np.concatenate(([0.0], np.cumsum(x)))
    t = np.arange(x.size)
    hi = np.clip(t - LEVEL_GAP, 0, x.size)
    lo = np.clip(t - LEVEL_GAP - LEVEL_STEPS, 0, x.size)
    return c[hi] - c[lo]


def _fit(n, k, hours, weekend, keep, prior_docs, prior_steps) -> Baseline:  # type: ignore[no-untyped-def]
    nk, kk, hk, wk = n[keep], k[keep], hours[keep], weekend[keep]
    p_all = (kk.sum() + 1.0) / (nk.sum() + 4.0)  # a weak prior keeps an empty history at 25 %
    n_h = np.bincount(hk, weights=nk, minlength=HOURS)
    k_h = np.bincount(hk, weights=kk, minlength=HOURS)
    share = (k_h + prior_docs * p_all) / (n_h + prior_docs)

    negatives = np.zeros((2, HOURS))
    for day_type in (0, 1):
        sel = wk == day_type
        steps_h = np.bincount(hk[sel], minlength=HOURS).astype(float)
        k_dh = np.bincount(hk[sel], weights=kk[sel], minlength=HOURS)
        mean_dt = kk[sel].mean() if sel.any() else (kk.mean() if kk.size else 0.0)
        negatives[day_type] = (k_dh + prior_steps * mean_dt) / (steps_h + prior_steps)

    p = level_adjusted(n, k, share[hours])[keep]  # the level runs over the full history
    return Baseline(share=share, negatives=np.maximum(negatives, 1e-3), rho=_robust_rho(nk, kk, p), steps=int(nk.size))


def _robust_rho(n: np.ndarray, k: np.ndarray, p: np.ndarray) -> float:
    """Over-dispersion from the median absolute Pearson residual, so a few past surges cannot inflate it.

    Under a beta-binomial, (k - np) / sqrt(np(1-p)(1 + (n-1) rho)) has a median absolute value of ~0.674; the
    smallest rho on a log grid that brings the observed median down to that is the estimate.
    """
    has = n >= 5
    if has.sum() < 24:
        return MIN_RHO
    n, k, p = n[has], k[has], p[has]
    z = np.abs(k - n * p) / np.sqrt(n * p * (1 - p))
    medians = np.median(z[None, :] / np.sqrt(1 + (n[None, :] - 1) * RHO_GRID[:, None]), axis=1)
    ok = np.nonzero(medians <= MEDIAN_ABS_NORMAL)[0]
    return float(RHO_GRID[ok[0]]) if ok.size else MAX_RHO
