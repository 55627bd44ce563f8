"""Bootstrap intervals (with a coverage check), crossovers, best fraction per N, seed noise, verdict.

Run: pytest tests/unit/test_uncertainty.py -q      (the coverage test takes a few seconds)
"""

import math
import re

import numpy as np
import pytest

from evals.analysis.saturation import n_sat_power
from evals.analysis.uncertainty import (
    analyze,
    arm_difference,
    best_fraction_per_n,
    bootstrap_arm,
    crossover,
    interval,
    resample,
    summarize,
    within_noise,
)
from evals.analysis.verdict import verdict

pytestmark = pytest.mark.unit

LADDER = [125, 250, 500, 1000, 2000, 4000, 8000]


def sweep(rng, arms, seeds=3, noise=0.01, n_items=0):
    """Run records for arms {name: (fraction, y_inf, A, alpha)}; with items, scores are item means."""
    recs = []
    for arm, (f, y_inf, a, alpha) in arms.items():
        for n in LADDER:
            for s in range(seeds):
                p = float(np.clip(y_inf - a * n ** (-alpha) + rng.normal(0, noise), 0, 1))
                rec = {"arm": arm, "fraction": f, "n": n, "seed": s, "score": p}
                if n_items:
                    items = (rng.random(n_items) < p).astype(int)
                    rec.update(items=items.tolist(), score=float(items.mean()))
                recs.append(rec)
    return recs


def reference(rng, p, n_items):
    items = (rng.random(n_items) < p).astype(int)
    return {"score": float(items.mean()), "items": items.tolist()}


def test_y_inf_interval_covers_the_truth_in_at_least_85_of_100_trials():
    # Simulated sweeps: y = 0.8 - 4.47 N^-0.5 (at N = 8,000 still 5 points below y_inf), 3 seeds,
    # seed noise SD 1.5 points, seeds-only bootstrap. Over 800 trials this method covered 88-90%.
    rng = np.random.default_rng(2024)
    covered = covered_n_sat = 0
    truth_n_sat = float(n_sat_power(4.47, 0.5, 0.01))
    for trial in range(100):
        recs = sweep(rng, {"synthetic": (1.0, 0.8, 4.47, 0.5)}, noise=0.015)
        summary = summarize(bootstrap_arm(resample(recs, n_boot=200, seed=trial), "synthetic"), level=0.9)
        covered += summary.y_inf.contains(0.8)
        covered_n_sat += summary.n_sat.contains(truth_n_sat)
    assert covered >= 85, covered
    assert covered_n_sat >= 85, covered_n_sat
    assert covered <= 99  # intervals that always cover would be uselessly wide


def test_resample_is_reproducible_and_paired_over_items():
    rng = np.random.default_rng(0)
    recs = sweep(rng, {"a": (0.0, 0.8, 4.0, 0.5)}, n_items=200)
    twin = dict(recs[0], arm="twin")  # same items and score as run 0, in another arm
    floor, ceiling = reference(rng, 0.05, 200), reference(rng, 0.85, 200)
    r1 = resample([*recs, twin], ceiling=ceiling, floor=floor, n_boot=300, over=("items",), seed=7)
    r2 = resample([*recs, twin], ceiling=ceiling, floor=floor, n_boot=300, over=("items",), seed=7)
    r3 = resample([*recs, twin], ceiling=ceiling, floor=floor, n_boot=300, over=("items",), seed=8)
    assert np.array_equal(r1.scores, r2.scores) and not np.array_equal(r1.scores, r3.scores)
    assert np.array_equal(r1.scores[:, 0], r1.scores[:, -1])  # one item resample shared by all runs
    assert r1.ceiling_reps.std() > 0.005 and r1.floor_reps.std() > 0.005
    assert abs(r1.scores.mean(axis=0) - [r["score"] for r in [*recs, twin]]).max() < 0.01
    assert resample(recs, n_boot=10).over == ("seeds", "items")  # default: both, items present


def test_resample_explains_what_it_cannot_do():
    recs = sweep(np.random.default_rng(0), {"a": (0.0, 0.8, 4.0, 0.5)})
    assert resample(recs, n_boot=10).over == ("seeds",)  # no items: seeds only
    with pytest.raises(ValueError, match="over includes 'items' but run 'a' n=125 seed=0 has none"):
        resample(recs, n_boot=10, over=("items",))
    with pytest.raises(ValueError, match="unknown"):
        resample(recs, n_boot=10, over=("runs",))
    with pytest.raises(ValueError, match="seed_pool"):
        resample(recs, n_boot=10, seed_pool="all")


def test_seed_resampling_matches_the_unbiased_variance_of_a_group_mean():
    scores = [0.60, 0.65, 0.72]
    recs = [{"arm": "a", "fraction": 0.0, "n": 100, "seed": s, "score": v} for s, v in enumerate(scores)]
    reps = resample(recs, n_boot=40000, seed=1, seed_pool="n")
    target = np.var(scores, ddof=1) / 3  # the plain bootstrap would give 2/3 of this
    assert reps.scores.mean(axis=1).var() == pytest.approx(target, rel=0.05)
    assert reps.dof(["a"]) == 2


def test_expanded_interval_is_wider_with_fewer_degrees_of_freedom():
    s = np.random.default_rng(0).normal(size=5000)
    wide, normal = interval(s, 0.0, 0.9, dof=4), interval(s, 0.0, 0.9)
    assert normal.lower == pytest.approx(-1.645, abs=0.1) and wide.upper > normal.upper + 0.3
    assert math.isnan(interval([math.nan] * 3, 0.0).lower)
    assert interval([1.0, 2.0, math.inf, math.inf], 1.5, 0.5).upper == math.inf


def _crossing_arms():
    # a: slow starter with the higher asymptote; b: fast starter that stalls
    return {"a": (0.0, 0.85, 6.0, 0.5), "b": (1.0, 0.70, 2.0, 0.6)}


def test_crossover_found_with_an_interval_and_checked_against_the_data():
    arms = _crossing_arms()
    grid = np.geomspace(125, 8000, 100000)
    curve = {k: y - a * grid ** (-al) for k, (_, y, a, al) in arms.items()}
    truth = grid[np.argmax(curve["a"] > curve["b"])]  # ~1,070
    recs = sweep(np.random.default_rng(3), arms, noise=0.005)
    reps = resample(recs, n_boot=300, seed=0)
    a, b = bootstrap_arm(reps, "a"), bootstrap_arm(reps, "b")
    c = crossover(a, b)
    assert c is not None and (c.leader, c.trailer) == ("a", "b")
    assert abs(math.log(c.n.estimate / truth)) < math.log(1.3)
    assert c.n.lower <= truth <= c.n.upper and c.n.upper < 8000
    assert c.data_agrees and c.share_crossing > 0.9
    assert [n for n, _ in c.data_diffs] == LADDER and c.data_diffs[-1][1] > 0 > c.data_diffs[0][1]
    assert crossover(b, a).n.estimate == pytest.approx(c.n.estimate)  # symmetric


def test_no_crossover_when_one_arm_leads_everywhere():
    rng = np.random.default_rng(4)
    recs = sweep(rng, {"b": (1.0, 0.70, 2.0, 0.6), "c": (0.5, 0.60, 2.0, 0.6)}, noise=0.005)
    reps = resample(recs, n_boot=100, seed=0)
    assert crossover(bootstrap_arm(reps, "b"), bootstrap_arm(reps, "c")) is None
    other = resample(recs, n_boot=100, seed=1)
    with pytest.raises(ValueError, match="different resample"):
        crossover(bootstrap_arm(reps, "b"), bootstrap_arm(other, "c"))


def test_within_noise_rule():
    assert within_noise([0.60, 0.62, 0.64], [0.61, 0.63, 0.59]).within  # diff 0.01 < SD 0.02
    clear = within_noise([0.70, 0.71, 0.72], [0.60, 0.62, 0.64])
    assert not clear.within and clear.diff == pytest.approx(0.09)
    assert clear.seed_sd == pytest.approx(0.0158, abs=1e-3)
    assert within_noise([0.7], [0.6]).within  # no noise estimate: cannot claim a difference
    assert not within_noise([0.7], [0.6], min_sd=0.05).within
    assert within_noise([0.5, 0.5], [0.5, 0.5]).within and not within_noise([0.6, 0.6], [0.5, 0.5]).within
    with pytest.raises(ValueError, match="need scores on both sides"):
        within_noise([], [0.5])


def _fixed_records():
    table = {  # arm: (fraction, {N: seed scores})
        "human": (0.0, {500: [0.60, 0.62, 0.64], 1000: [0.60, 0.61, 0.62]}),
        "hybrid-50": (0.5, {500: [0.61, 0.63, 0.59], 1000: [0.70, 0.71, 0.72]}),
        "synthetic": (1.0, {500: [0.40, 0.41, 0.42], 1000: [0.50, 0.52, 0.51]}),
    }
    return [{"arm": arm, "fraction": f, "n": n, "seed": s, "score": v}
            for arm, (f, by_n) in table.items() for n, vals in by_n.items() for s, v in enumerate(vals)]


def test_best_fraction_per_n_flags_ties_within_seed_noise():
    best = best_fraction_per_n(_fixed_records(), n_boot=500, seed=0)
    assert [b.n for b in best] == [500, 1000]
    tie, clear = best
    assert {tie.arm, tie.runner_up} == {"human", "hybrid-50"} and tie.within_noise
    assert tie.diff.lower < 0 < tie.diff.upper and 0.3 < tie.share_best < 0.9
    assert clear.arm == "hybrid-50" and clear.fraction == 0.5 and clear.runner_up == "human"
    assert not clear.within_noise and clear.diff.lower > 0 and clear.share_best > 0.99
    assert clear.score.lower < 0.71 < clear.score.upper
    oracle = {"arm": "oracle", "fraction": 0.0, "n": 1000, "seed": 0, "score": 0.99, "feasible": False}
    infeasible = [*_fixed_records(), oracle]
    assert best_fraction_per_n(infeasible, n_boot=100)[1].arm == "hybrid-50"  # infeasible runs never win


def test_arm_difference_is_paired():
    rng = np.random.default_rng(5)
    recs = sweep(rng, _crossing_arms(), noise=0.005, n_items=300)
    reps = resample(recs, n_boot=300, seed=0)
    a, b = bootstrap_arm(reps, "a"), bootstrap_arm(reps, "b")
    d = arm_difference(a, b, 8000)
    assert d.estimate == pytest.approx(a.means[-1] - b.means[-1]) and d.lower > 0
    with pytest.raises(ValueError, match="N=300 not measured"):
        arm_difference(a, b, 300)


def test_analyze_summaries_and_verdict_come_from_the_numbers():
    rng = np.random.default_rng(6)
    arms = {"human-only": (0.0, 0.85, 6.0, 0.5), "synthetic-only": (1.0, 0.70, 2.0, 0.6)}
    recs = sweep(rng, arms, noise=0.01, n_items=400)
    ceiling, floor = reference(rng, 0.76, 400), reference(rng, 0.05, 400)
    an = analyze(recs, ceiling=ceiling, floor=floor, n_boot=200, seed=0)
    s = an.summaries["synthetic-only"]
    assert an.replicates.over == ("seeds", "items")
    for iv in (s.y_inf, s.exponent, s.n_sat, s.pgr_inf, s.teacher_gap):
        assert iv.lower <= iv.estimate <= iv.upper and iv.level == 0.9
    assert s.teacher_gap.estimate == pytest.approx(ceiling["score"] - s.y_inf.estimate)
    assert s.band_n.shape == s.band_lower.shape == s.band_upper.shape
    centre = s.fit.predict(s.band_n)
    assert np.all(s.band_lower <= centre + 1e-9) and np.all(centre <= s.band_upper + 1e-9)
    assert [n for n, _ in s.means] == LADDER
    text = verdict(an.summaries.values(), an.best, an.crossovers)
    sentences = re.findall(r"[^.]*?(?:\.\s|\.$)", text)
    assert 2 <= len(sentences) <= 4, text
    gap = f"{100 * s.teacher_gap.estimate:.1f} points below the teacher"
    assert text.startswith("synthetic-only saturates at N≈") and gap in text, text
    n_sat_text = f"{float(f'{s.n_sat.estimate:.2g}'):,.0f}"
    assert f"N≈{n_sat_text} (90% CI" in text
    assert "human-only (f=0) is best from N≥" in text and "human-only overtakes synthetic-only" in text
    higher = analyze(recs, ceiling=reference(rng, 0.9, 400), floor=floor, n_boot=200, seed=0)
    assert verdict(higher.summaries.values()) != verdict(an.summaries.values())  # not hard-coded
