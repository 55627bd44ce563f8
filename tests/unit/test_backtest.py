"""Backtests (evals.analysis.backtest): on curves with known parameters, held-out rungs fall inside
their 90% forecast intervals at about the nominal rate.

Run: .venv/bin/python -m pytest tests/unit/test_backtest.py -q
"""
import numpy as np
import pytest

from evals.analysis.backtest import backtest
from evals.analysis.uncertainty import bootstrap_arm, resample

pytestmark = pytest.mark.unit
LADDER = (125, 250, 500, 1000, 2000, 4000)


def _sweep(rng, items=300):
    """Two arms on power laws, 3 seeds per size; each seed shifts every item's chance (SD 2 points)."""
    difficulty = rng.uniform(-0.1, 0.1, items)
    runs = []
    for arm, f, (y_inf, a, alpha) in (("human", 0.0, (0.75, 2.0, 0.45)), ("synthetic", 1.0, (0.6, 1.0, 0.4))):
        for n in LADDER:
            for s in range(3):
                p = np.clip(y_inf - a * n ** -alpha + difficulty + rng.normal(0, 0.02), 0, 1)
                it = rng.binomial(1, p).astype(float)
                runs.append({"arm": arm, "fraction": f, "n": n, "seed": s, "score": float(it.mean()),
                             "items": it.tolist()})
    return runs


def test_backtest_covers_held_out_rungs_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    covered = total = 0
    for trial in range(50):  # 2 arms: 100 top-rung forecasts
        reps = resample(_sweep(rng), n_boot=200, seed=trial)
        arms = {a: bootstrap_arm(reps, a) for a in reps.arms()}
        bt = backtest(reps, arms, level=0.9)
        top = [h for h in bt.held if h.dropped == 1]
        covered += sum(h.covered for h in top)
        total += len(top)
    assert total == 100 and covered >= 85


def test_backtest_scores_decisions_and_needs_four_sizes():
    rng = np.random.default_rng(1)
    runs = _sweep(rng)
    reps = resample(runs, n_boot=200)
    bt = backtest(reps, {a: bootstrap_arm(reps, a) for a in reps.arms()})
    assert {h.dropped for h in bt.held} == {1, 2, 3} and len(bt.held) == 2 * (1 + 2 + 3)
    assert [d[:2] for d in bt.decisions] == [(1, 4000.0), (2, 4000.0), (3, 4000.0)]
    assert bt.decision_accuracy == 1.0  # human leads by ~10 points at 4k
    assert bt.widen >= 1.0 and bt.calibrated  # 12 residuals: enough for the 90% conformal rank
    four = [r for r in runs if r["n"] <= 1000]  # 4 sizes: only the top rung can be left out
    reps4 = resample(four, n_boot=100)
    bt4 = backtest(reps4, {a: bootstrap_arm(reps4, a) for a in reps4.arms()})
    assert {h.dropped for h in bt4.held} == {1} and all(bt4.forecastable.values())
    short = [r for r in runs if r["n"] <= 500]
    reps = resample(short, n_boot=50)
    assert backtest(reps, {a: bootstrap_arm(reps, a) for a in reps.arms()}) is None


def test_report_section_prints_nominal_and_observed_coverage_and_flags_unreliable_forecasts():
    from evals.analysis.uncertainty import analyze
    from evals.report import forecast_report

    rng = np.random.default_rng(2)
    result = analyze(_sweep(rng), n_boot=200)
    blocks, summary = forecast_report.section(result, 0.9)
    text = " ".join(str(b[-1]) for b in blocks if b[0] == "p")
    assert f"coverage {100 * summary['coverage']:.0f}% observed at 90% nominal" in text
    assert ("unreliable" in text) == (summary["coverage"] < 0.8)
    # a curve that turns down past the fitted rungs: its top rung misses, so the arm is not forecastable
    runs = [r if r["n"] < 2000 else {**r, "score": r["score"] - 0.3} for r in _sweep(rng)]
    blocks, summary = forecast_report.section(analyze(runs, n_boot=200), 0.9)
    assert summary["coverage"] < 0.8 and not any(summary["forecastable"].values())
    table = next(b for b in blocks if b[0] == "table" and "widened forecast [CI]" in b[1])
    assert all(row[-1] == "not forecastable" for row in table[2])
