"""Paired comparisons (evals.analysis.paired): exact McNemar, paired bootstrap, minimum detectable difference.

Run: .venv/bin/python -m pytest tests/unit/test_paired.py -q
"""
import math

import numpy as np
import pytest
from scipy import stats

from evals.analysis.paired import mcnemar, min_detectable, paired_difference

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(5))
def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs(seed):
    rng = np.random.default_rng(seed)
    a = rng.binomial(1, 0.6, 200)
    b = np.where(rng.random(200) < 0.8, a, 1 - a)  # B mostly agrees with A
    m = mcnemar(a, b)
    assert m.a_only == int(np.sum((a == 1) & (b == 0))) and m.b_only == int(np.sum((a == 0) & (b == 1)))
    ref = stats.binomtest(m.a_only, m.a_only + m.b_only, 0.5).pvalue
    assert m.p_value == pytest.approx(ref, rel=1e-9)


def test_mcnemar_without_discordant_items_and_with_non_binary_items():
    assert mcnemar([1, 0, 1], [1, 0, 1]).p_value == 1.0
    with pytest.raises(ValueError, match="not 0/1"):
        mcnemar([0.5, 1.0], [1.0, 0.0])


def test_paired_bootstrap_interval_holds_the_difference_and_excludes_zero_for_a_real_gap():
    rng = np.random.default_rng(3)
    b = rng.binomial(1, 0.5, 500).astype(float)
    a = np.maximum(b, rng.binomial(1, 0.3, 500))  # A is right wherever B is, and on ~15% more items
    d = paired_difference(a, b, n_boot=1000)
    assert d.estimate == pytest.approx(a.mean() - b.mean()) and d.lower > 0


def test_min_detectable_difference_has_the_stated_power():
    """Simulated two-sided 90% tests between two models whose true scores differ by the MDD reject in
    ~80% of trials (1,000 trials, item noise only, 500 items at p = 0.5)."""
    mdd = min_detectable(500, p=0.5, level=0.9, power=0.8)
    assert mdd == pytest.approx((stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) * math.sqrt(2 * 0.25 / 500))
    rng = np.random.default_rng(0)
    lo, hi = rng.binomial(500, 0.5 - mdd / 2, 1000) / 500, rng.binomial(500, 0.5 + mdd / 2, 1000) / 500
    pooled = (lo + hi) / 2
    z = (hi - lo) / np.sqrt(2 * pooled * (1 - pooled) / 500)
    assert 0.76 <= np.mean(np.abs(z) > stats.norm.ppf(0.95)) <= 0.84
    # seed noise and more seeds enter as s^2 / k
    assert min_detectable(500, seeds=2, seed_sd=0.03) == pytest.approx(
        (stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) * math.sqrt(2 * (0.25 / 500 + 0.03 ** 2 / 2)))
