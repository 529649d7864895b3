"""The statistical core: the beta-binomial test, the gates, the baseline and its robustness."""

from __future__ import annotations

import numpy as np

from alerts import baseline
from alerts.detection import DetectorConfig, Severity, score


def _score(n, k, p=0.2, rho=0.002, config=None):
    n, k = np.asarray(n, float), np.asarray(k, float)
    return score(config or DetectorConfig(), n, k, np.full(n.size, p), np.full(n.size, p * n.mean()), rho)


def test_a_tripled_negative_share_with_enough_documents_is_significant() -> None:
    s = _score([40, 40, 40], [8, 8, 28])
    assert not s.significant[:2].any() and s.significant[2]
    assert s.severity[2] >= Severity.WARNING and s.ratio[2] > 3


def test_volume_gate_blocks_tiny_windows_even_when_all_negative() -> None:
    s = _score([3, 3, 3, 3], [3, 3, 3, 3], p=0.1, config=DetectorConfig(spans=(1, 2)))
    assert not s.significant.any()


def test_a_busy_window_with_a_normal_share_is_not_a_surge() -> None:
    s = _score([40, 400], [8, 84])  # ten times the volume, share 21 % against 20 %
    assert not s.significant.any()


def test_over_dispersion_widens_the_test() -> None:
    n, k = [400], [140]  # 35 % against 20 %: binomially extreme, within day-to-day drift for a wide beta
    assert _score(n, k, rho=0.002).pvalue[0] < 1e-6
    assert _score(n, k, rho=0.03).pvalue[0] > 1e-4


def test_longer_spans_accumulate_evidence() -> None:
    n, k = [12, 12, 12, 12], [7, 7, 7, 7]  # too thin per step, clear over an hour
    one = _score(n, k, config=DetectorConfig(spans=(1,)))
    four = _score(n, k, config=DetectorConfig(spans=(1, 2, 4)))
    assert not one.significant.any() and four.significant[-1] and four.span[-1] == 4


def test_baseline_learns_hourly_share_and_ignores_a_past_surge() -> None:
    rng = np.random.default_rng(0)
    steps = 14 * 96
    hours = (np.arange(steps) // 4) % 24
    weekend = np.zeros(steps, dtype=int)
    share = np.where(hours < 12, 0.1, 0.3)
    n = rng.poisson(60, steps).astype(float)
    k = rng.binomial(n.astype(int), share).astype(float)
    clean = baseline.fit(n, k, hours, weekend)
    k2 = k.copy()
    k2[500:506] = n[500:506]  # one past incident: every document negative for 90 minutes
    dirty = baseline.fit(n, k2, hours, weekend)
    assert abs(clean.share[3] - 0.1) < 0.02 and abs(clean.share[18] - 0.3) < 0.03
    assert abs(dirty.share[hours[503]] - clean.share[hours[503]]) < 0.02
    assert dirty.rho <= max(4 * clean.rho, 0.005)


def test_an_empty_history_gives_a_usable_baseline() -> None:
    b = baseline.fit(np.zeros(0), np.zeros(0), np.zeros(0, int), np.zeros(0, int))
    share, neg = b.expected(np.array([3]), np.array([0]))
    assert 0 < share[0] < 1 and neg[0] > 0


def _sparse(n, k, share, mu, rate_shape=np.inf):
    n, k = np.asarray(n, float), np.asarray(k, float)
    return score(DetectorConfig(), n, k, np.full(n.size, share), np.full(n.size, mu), 0.002, rate_shape)


def test_a_burst_of_a_dozen_negatives_on_a_quiet_subject_is_significant() -> None:
    s = _sparse([1, 12], [0, 12], share=0.25, mu=0.12)  # ~2 documents an hour, then 12 negatives in a step
    assert not s.significant[0] and s.significant[1] and s.docs[1] < 20
    assert s.count_pvalue[1] < 1e-8 and s.share_pvalue[1] < 1e-3


def test_a_quiet_subject_needs_both_more_negatives_and_a_larger_share() -> None:
    neutral = _sparse([1, 19], [0, 8], share=0.25, mu=0.12)  # a burst of ordinary news, share a bit up
    assert neutral.count_pvalue[1] < 1e-3 and neutral.share_pvalue[1] > 1e-2 and not neutral.significant.any()
    gloomy = _sparse([1, 12], [1, 11], share=0.8, mu=0.12)  # a subject that is always negative: share 1.15x
    assert not gloomy.significant.any()
    known = _sparse([1, 12], [0, 12], share=0.25, mu=6.0)  # 12 negatives are what this subject has anyway
    assert not known.significant.any()
    few = _sparse([1, 7], [0, 7], share=0.1, mu=0.05)  # below the floor on negatives
    assert not few.significant.any()


def test_a_thin_history_widens_the_count_test() -> None:
    sure = _sparse([10], [9], share=0.25, mu=0.5, rate_shape=200.0)
    unsure = _sparse([10], [9], share=0.25, mu=0.5, rate_shape=0.5)
    assert unsure.count_pvalue[0] > 100 * sure.count_pvalue[0]
