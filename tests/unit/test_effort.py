"""Score per expert hour from sweep records: curves, best arm at a budget, gains, noise labels,
and the expert-hour axis of the cost frontier.
Run: pytest tests/unit/test_effort.py -q"""
from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from evals.analysis.effort import at_budgets, budgets, curves, gains, verdict
from evals.analysis.frontier import Prices, expert_frontier, frontier, ledger
from evals.analysis.uncertainty import resample

pytestmark = pytest.mark.unit
SECONDS = {"human": 30.0, "edited": 18.0, "picked": 6.0, "synthetic": 0.0}


def _records(means: dict[str, dict[int, float]], noise: float = 0.01, items: int = 300,
             seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    runs = []
    for arm, by_n in means.items():
        for n, p in by_n.items():
            for s in range(3):
                correct = (rng.random(items) < p + rng.normal(0, noise)).astype(int).tolist()
                runs.append({"arm": arm, "fraction": 1.0 if arm == "synthetic" else 0.0, "n": n, "seed": s,
                             "score": float(np.mean(correct)), "items": correct,
                             "cost": {"human_s": SECONDS[arm] * n}})
    return runs


MEANS = {"human": {100: 0.30, 200: 0.45, 400: 0.60}, "edited": {100: 0.35, 200: 0.50, 400: 0.62},
         "picked": {100: 0.33, 200: 0.40, 400: 0.44}, "synthetic": {100: 0.30, 200: 0.32, 400: 0.33}}


def test_points_carry_mean_expert_hours_and_intervals():
    reps = resample(_records(MEANS), n_boot=300, seed=1)
    pts = curves(reps, 0.9)
    assert [round(p.hours, 4) for p in pts["human"]] == [round(30 * n / 3600, 4) for n in (100, 200, 400)]
    assert all(p.hours == 0 for p in pts["synthetic"])
    for p in pts["edited"]:
        assert p.score.lower <= p.score.estimate <= p.score.upper



def test_a_score_interval_stays_inside_zero_to_one():
    """Seeds far apart near a perfect score: the widened interval is clipped at 1 (a report showed
    80.4 [51.3, 106.3] points for a two-seed cell)."""
    runs = [{"arm": "human", "fraction": 0.0, "n": 100, "seed": s, "score": p, "items": [1] * int(p * 100)
             + [0] * (100 - int(p * 100)), "cost": {"human_s": 3000.0}} for s, p in enumerate((0.99, 0.62))]
    pts = curves(resample(runs, n_boot=300, seed=1), 0.9)
    (point,) = pts["human"]
    assert 0.0 <= point.score.lower <= point.score.estimate <= point.score.upper <= 1.0
    assert point.score.upper == 1.0  # the unclipped interval reaches past 1: the clip is what holds it

def test_best_arm_at_a_budget_spends_only_what_it_may():
    reps = resample(_records(MEANS), n_boot=300, seed=1)
    pts = curves(reps, 0.9)
    rows = at_budgets(pts, [0.5, 1.0, 2.0, 3.4], reps, 0.9)
    by = {r.hours: r for r in rows}
    # 0.5 h affords edited N=100 (0.5 h, 0.35) and picked N=200 (0.33 h, 0.40), not picked N=400 (0.67 h)
    assert by[0.5].arm == "picked" and by[0.5].point.n == 200 and by[0.5].runner_up == "edited"
    assert by[2.0].arm == "edited" and by[2.0].point.n == 400  # 400 edits = 2 h
    assert by[3.4].point.n == 400 and by[3.4].arm in ("edited", "human")
    assert all(r.point.hours <= r.hours + 1e-9 for r in rows)
    close = by[3.4]  # 0.62 vs 0.60 on 300 items x 3 seeds: an interval that includes zero
    assert close.within_noise == (close.lead.lower <= 0.0)
    far = by[2.0]
    assert not far.within_noise and far.lead.lower > 0  # edited 0.62 vs picked 0.44


def test_gains_per_expert_hour_over_the_raw_drafts():
    reps = resample(_records(MEANS, noise=0.0, items=2000), n_boot=300, seed=1)
    rows = {(g.arm, g.n): g for g in gains(curves(reps, 0.9), reps, 0.9)}
    g = rows[("edited", 200)]  # (0.50 - 0.32) points*100 / 1 h
    assert g.over_raw.estimate == pytest.approx(18.0, abs=3.0) and not g.over_raw_within_noise
    assert (rows[("picked", 400)].marginal.estimate
            == pytest.approx((0.44 - 0.40) * 100 / (200 * 6 / 3600), abs=8))
    assert ("synthetic", 100) not in rows
    text = verdict(at_budgets(curves(reps, 0.9), budgets(curves(reps, 0.9)), reps, 0.9), list(rows.values()),
                   {a: a for a in MEANS})
    assert "expert hours per run" in text and "points per hour" in text


def test_budgets_span_the_expert_hours_on_a_log_scale():
    reps = resample(_records(MEANS), n_boot=50, seed=1)
    b = budgets(curves(reps, 0.9))
    assert b[0] >= 6 * 100 / 3600 and b[-1] >= 30 * 400 / 3600 and b == sorted(b) and len(b) == 4


def test_the_frontier_prices_expert_time_and_has_an_expert_hour_axis():
    prices = Prices(expert_s=60 / 3600)
    assert ledger({"human_s": 1800}, prices).human == pytest.approx(30.0)
    front = frontier(_records(MEANS), prices)
    axis = expert_frontier(front)
    assert axis[0].human_hours == 0 and axis[0].arm == "synthetic"
    assert all(a.human_hours < b.human_hours and a.score < b.score for a, b in pairwise(axis))
    with pytest.raises(ValueError, match="unknown keys"):
        ledger({"human_hours": 1}, prices)
