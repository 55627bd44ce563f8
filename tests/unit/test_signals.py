"""Expert signals at equal hours: which arms pair with which baseline, and the paired differences.
Run: pytest tests/unit/test_signals.py -q"""
from __future__ import annotations

import numpy as np
import pytest

from evals.analysis.effort import curves
from evals.analysis.signals import pairings, versus
from evals.analysis.uncertainty import resample
from evals.report.signals_report import section

pytestmark = pytest.mark.unit
ARMS = {"pick-sft": {"human": "picked", "fraction": 0.0},
        "pick-dpo": {"human": "picked", "fraction": 0.0, "objective": "dpo"},
        "edit-apo": {"human": "edited", "fraction": 0.0, "objective": "apo"},  # no edit-sft: no pair
        "edit-random": {"human": "edited", "fraction": 0.0, "allocator": "random"},
        "edit-failed": {"human": "edited", "fraction": 0.0, "allocator": "verifier_failed"}}
MEANS = {"pick-sft": 0.50, "pick-dpo": 0.70, "edit-apo": 0.5, "edit-random": 0.60, "edit-failed": 0.61}


def _records(seed: int = 0, items: int = 400) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"arm": arm, "fraction": 0.0, "n": n, "seed": s, "score": float(np.mean(c)), "items": c,
             "cost": {"human_s": 6.0 * n}}
            for arm, p in MEANS.items() for n in (100, 200) for s in range(3)
            for c in [(rng.random(items) < p).astype(int).tolist()]]


def test_preference_and_allocated_arms_pair_with_their_baselines():
    assert sorted(pairings(ARMS)) == [("edit-failed", "edit-random", "allocator"),
                                      ("pick-dpo", "pick-sft", "objective")]


def test_differences_at_equal_hours_with_noise_labels():
    reps = resample(_records(), n_boot=300, seed=1)
    rows = versus(curves(reps, 0.9), reps, ARMS, 0.9)
    assert [(v.arm, v.n) for v in rows] == [("pick-dpo", 100), ("pick-dpo", 200), ("edit-failed", 100),
                                           ("edit-failed", 200)]
    for v in rows:
        assert v.hours == v.baseline_hours and v.diff.lower <= v.diff.estimate <= v.diff.upper
    dpo = [v for v in rows if v.arm == "pick-dpo"]
    assert all(not v.within_noise and v.diff.lower > 0 for v in dpo)  # 0.70 vs 0.50 on 400 items x 3 seeds
    assert all(v.within_noise for v in rows if v.arm == "edit-failed")  # 0.61 vs 0.60: inside the noise
    blocks, summary = section(reps, ARMS, 0.9)
    assert blocks[0] == ("h", 2, "Expert signals at equal hours") and len(summary["versus"]) == len(rows)
    assert ("h", 3, "The best use of H expert hours") in blocks and summary["uses"]


def test_the_best_use_of_h_hours_lists_every_affordable_use_best_first():
    from evals.analysis.signals import uses_at_budgets

    reps = resample(_records(), n_boot=300, seed=1)
    rows = uses_at_budgets(curves(reps, 0.9), [6.0 * 100 / 3600, 1.0], reps, 0.9)
    (_, pts_small, lead_small), (_, pts_large, _) = rows
    assert all(p.n == 100 for p in pts_small) and len(pts_small) == len(MEANS)  # 200 rows cost more than H
    assert pts_small[0].arm == "pick-dpo" and lead_small.lower > 0  # 0.70 vs the next best 0.61
    assert ([p.score.estimate for p in pts_large]
            == sorted((p.score.estimate for p in pts_large), reverse=True))
