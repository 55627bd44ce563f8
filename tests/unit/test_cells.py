"""Per-cell intervals (evals.analysis.cells): t over seeds plus item SE, always inside [0, 1].

Run: .venv/bin/python -m pytest tests/unit/test_cells.py -q
"""
import math

import numpy as np
import pytest
from scipy import stats

from evals.analysis.cells import cell_interval, clip_to
from evals.analysis.uncertainty import best_fraction_per_n, bootstrap_arm, resample, summarize

pytestmark = pytest.mark.unit


def test_seed_only_interval_is_the_t_interval():
    y = [0.20, 0.26, 0.17]
    mean, lo, hi = cell_interval(y, None, 0.9)
    half = stats.t.ppf(0.95, 2) * np.std(y, ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(np.mean(y))
    assert (lo, hi) == pytest.approx((np.mean(y) - half, np.mean(y) + half))


def test_item_se_adds_to_seed_noise_and_one_seed_keeps_the_item_part():
    rng = np.random.default_rng(0)
    items = rng.binomial(1, 0.5, size=(2, 400)).astype(float)
    scores = items.mean(axis=1)
    _, lo_s, hi_s = cell_interval(scores, None)
    _, lo_b, hi_b = cell_interval(scores, items)
    assert hi_b - lo_b > hi_s - lo_s and math.isfinite(lo_b)  # the shared item error widens it
    # one seed: only the item SE, normal-like (dof = I - 1)
    _, lo1, hi1 = cell_interval(scores[:1], items[:1])
    se = items[0].std(ddof=1) / math.sqrt(400)
    assert hi1 - lo1 == pytest.approx(2 * stats.t.ppf(0.95, 399) * se)
    assert math.isnan(cell_interval([0.3])[1])


def test_every_interval_stays_in_the_score_range():
    assert cell_interval([0.97, 1.0], None) [2] == 1.0
    assert cell_interval([0.0, 0.04], None)[1] == 0.0
    assert clip_to(-0.2, 1.3) == (0.0, 1.0)


def test_two_seed_intervals_cover_a_second_seed_set_at_about_the_nominal_rate():
    """A second seed set, scored on the same 300 test items, lands in the first set's 90% interval.

    Each item has its own difficulty; a seed shifts every item's chance by a seed effect (SD 5 points).
    For k = 2 the theoretical rate of holding the next set's mean is P(|t_1| < t_1(0.95) / sqrt 2) = 0.86.
    """
    rng = np.random.default_rng(1)
    hits, trials = 0, 400
    for _ in range(trials):
        difficulty = rng.beta(2, 2, size=300)

        def seed_set(difficulty=difficulty):
            p = np.clip(difficulty[None, :] + rng.normal(0, 0.05, size=(2, 1)), 0, 1)
            items = rng.binomial(1, p).astype(float)
            return items.mean(axis=1), items
        a, a_items = seed_set()
        b, _ = seed_set()
        _, lo, hi = cell_interval(a, a_items, 0.9)
        hits += lo <= b.mean() <= hi
    assert hits / trials >= 0.8


def test_report_cell_intervals_use_the_cell_rule():
    rng = np.random.default_rng(2)
    runs = [{"arm": arm, "fraction": f, "n": n, "seed": s,
             "score": float(np.clip(0.3 + 0.1 * f + 0.05 * math.log(n / 100)
             + rng.normal(0, 0.04), 0, 1))} for arm, f in (("human", 0.0), ("synthetic", 1.0))
            for n in (100, 200, 400, 800) for s in (0, 1)]
    reps = resample(runs, n_boot=200, over=("seeds",))
    s = summarize(bootstrap_arm(reps, "human"))
    n, iv = s.means[0]
    y = [r["score"] for r in runs if r["arm"] == "human" and r["n"] == n]
    assert (iv.lower, iv.upper) == pytest.approx(cell_interval(y)[1:])
    best = best_fraction_per_n(reps)
    assert all(0.0 <= b.score.lower <= b.score.upper <= 1.0 for b in best)
