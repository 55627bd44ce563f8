"""Honest fits and measured claims: parameters the data do not pin down are reported as not
identified; teacher, wall and convergence comparisons carry intervals; early stopping's state machine.

Run: pytest tests/unit/test_precision.py -q
"""

import math

import numpy as np
import pytest

from distill.recipe.schema import EarlyStop
from distill.training.early_stop import Stopper, replay
from evals.analysis.checks import claims, convergence, seed_noise
from evals.analysis.records import Check
from evals.analysis.saturation import identified
from evals.analysis.uncertainty import analyze
from evals.analysis.verdict import claims_verdict
from evals.report.sweep import write_report

pytestmark = pytest.mark.unit


def _runs(arm, f, means, sd, rng, seeds=3, n_items=0):
    out = []
    for n, m in means.items():
        for s in range(seeds):
            p = float(np.clip(m + rng.normal(0, sd), 0, 1))
            rec = {"arm": arm, "fraction": f, "n": n, "seed": s, "score": p}
            if n_items:
                items = (rng.random(n_items) < p).astype(int)
                rec.update(items=items.tolist(), score=float(items.mean()))
            out.append(rec)
    return out


def test_identified_rules():
    assert identified("alpha", 0.5, 0.3, 0.8)
    assert not identified("alpha", 4.0, 1.0, 4.0)  # on the bound
    assert not identified("alpha", 0.5, 0.011, 3.9)  # interval covers nearly the whole range
    assert not identified("alpha", math.nan, math.nan, math.nan)  # a flat curve's exponent
    assert identified("y_inf", 0.8, 0.78, 0.82)
    assert not identified("y_inf", 1.0, 0.7, 1.0)
    assert identified("n_sat", 900.0, 700.0, 1300.0) and not identified("n_sat", 900.0, 700.0, math.nan)


def test_flat_within_noise_and_unsaturated_curves_report_not_identified(tmp_path):
    rng = np.random.default_rng(3)
    sizes = [250, 500, 1000, 2000]
    flat = _runs("flat", 1.0, dict.fromkeys(sizes, 0.6), 0.01, rng)  # no trend, only seed noise
    # still rising by the same amount per doubling at the largest N: no asymptote in sight
    rising = _runs("rising", 0.0, {n: 0.2 + 0.08 * math.log2(n / 250) for n in sizes}, 0.005, rng)
    result = analyze(flat + rising, ceiling=0.7, n_boot=300, seed=0)
    s_flat, s_rise = result.summaries["flat"], result.summaries["rising"]
    assert not s_flat.identified("exponent")
    assert not s_rise.identified("y_inf") and not s_rise.identified("teacher_gap")
    out = write_report({"name": "t", "runs": flat + rising, "ceiling": 0.7}, tmp_path)
    rows = {r["arm"]: r for r in out["fits"]}
    assert "exponent" in rows["flat"]["not_identified"] and "y_inf" in rows["rising"]["not_identified"]
    md = (tmp_path / "report.md").read_text()
    table = next(line for line in md.splitlines() if line.startswith("| rising "))
    assert "not identified" in table and "100.0" not in table  # not the bound value
    assert "rising saturates at" not in out["verdict"]  # an asymptote it does not have is never quoted


def test_teacher_wall_and_noise_claims_follow_the_numbers():
    rng = np.random.default_rng(0)
    human = _runs("human", 0.0, {250: 0.5, 500: 0.94, 1000: 0.945}, 0.01, rng, n_items=1000)
    synth = _runs("synthetic", 1.0, {500: 0.72, 1000: 0.80, 2000: 0.81}, 0.005, rng, n_items=1000)
    items = (rng.random(1000) < 0.81).astype(int)
    teacher = {"score": float(items.mean()), "items": items.tolist()}
    result = analyze(human + synth, ceiling=teacher, n_boot=400, seed=0)
    found = claims(result, level=0.9, pool=500, score="exact match")
    wall = found.walls[0]
    assert (wall.arm == "human" and wall.binds and wall.before.estimate > 0.3
            and abs(wall.after.estimate) < 0.05)
    versus = {c.arm: c for c in found.teacher}
    assert versus["human"].plateau == "above"
    cells = {(c.arm, c.n): c.sd for c in seed_noise(result)}
    assert set(cells) == {("human", 250), ("human", 500), ("human", 1000), ("synthetic", 500),
                          ("synthetic", 1000), ("synthetic", 2000)}
    assert found.median_sd < 0.03
    text = claims_verdict(list(result.summaries.values()), result.best, result.crossovers, found)
    assert "the human pool binds" in text and "Claims rest on exact match" in text
    # a pool that the ladder does not straddle says nothing about the wall
    assert not claims(result, level=0.9, pool=5000, score="x").walls


def _check(score: float) -> Check:
    """A convergence check of arm a's run at N=1000, seed 0, with twice the budget."""
    return Check(arm="a", fraction=1.0, n=1000, seed=0, factor=2, score=score)


def test_convergence_pairs_checks_with_the_same_seed():
    rng = np.random.default_rng(1)
    runs = _runs("a", 1.0, {500: 0.7, 1000: 0.8}, 0.02, rng)
    result = analyze(runs, n_boot=50, seed=0)
    cells = seed_noise(result)
    base = {(r["n"], r["seed"]): r["score"] for r in runs}
    ok = convergence([_check(base[(1000, 0)] + 0.001)],
                     result.replicates.runs, cells)
    bad = convergence([_check(base[(1000, 0)] + 0.2)],
                      result.replicates.runs, cells)
    assert ok[0].converged and not bad[0].converged and bad[0].shift == pytest.approx(0.2)


def test_repeated_seeds_of_an_arm_are_refused():
    from distill.recipe.loading import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"arms\.human\.seeds has repeated values: \[0, 0\]"):
        load_recipe("recipes/demo.yaml", ["mixes.arms.0.seeds=[0,0]"])


def test_convergence_noise_is_never_below_one_scores_item_error():
    """Seeds that agree exactly (SD 0) do not make a score exact: a change within one score's item
    standard error is converged, a change of several standard errors is not."""
    items = [1] * 800 + [0] * 200
    runs = [{"arm": "a", "fraction": 1.0, "n": n, "seed": s, "items": items, "score": 0.8}
            for n in (500, 1000) for s in range(3)]
    result = analyze(runs, n_boot=20, seed=0)
    cells = seed_noise(result)
    se = math.sqrt(0.8 * 0.2 / 999)
    small, large = (convergence([_check(0.8 + d)],
                                result.replicates.runs, cells)[0] for d in (0.5 * se, 4 * se))
    assert small.seed_sd == pytest.approx(0.0, abs=1e-12) and small.item_se == pytest.approx(se, rel=1e-3)
    assert small.converged and not large.converged
    # a fall of the same size is not converged either, but it is not undertraining: the verdict says which
    drop = convergence([_check(0.8 - 4 * se)],
                       result.replicates.runs, cells)[0]
    assert large.undertrained and not drop.converged and not drop.undertrained
    from evals.analysis.verdict import _convergence_sentence
    assert ("FAILED" in _convergence_sentence([small, large])
            and "undertrained" in _convergence_sentence([large]))
    fell = _convergence_sentence([drop])
    assert "FAILED" not in fell and "a at N=1,000 fell by its noise" in fell


def test_stopper_patience_cooldown_and_replay():
    cfg = EarlyStop(every=10, patience=2, cooldown=0.5)
    s = Stopper(cfg)
    for step, loss in [(10, 3.0), (20, 2.0), (30, 2.5), (40, 2.1)]:
        assert s.due(step) and not s.done(step)
        s.observe(step, loss)
    assert s.best_step == 20 and s.cooldown_start == 40 and s.end == 60
    assert not s.due(50)  # no checks during the cooldown
    assert s.lr_factor(39) == 1.0 and 0 < s.lr_factor(59) < s.lr_factor(40) < 1.0
    assert s.done(60) and not s.done(59)
    again = replay(cfg, [{"step": 10, "loss": 1, "val_loss": 3.0}, {"step": 15, "loss": 1},
                         {"step": 20, "loss": 1, "val_loss": 2.0}, {"step": 30, "loss": 1, "val_loss": 2.5},
                         {"step": 40, "loss": 1, "val_loss": 2.1}])
    assert (again.best_step, again.cooldown_start, again.end) == (20, 40, 60)


def test_per_arm_ladders_and_convergence_check_steps():
    from distill.pipeline.plan import plan
    from distill.recipe.loading import load_recipe

    # the demo with its convergence check switched on and a third seed for the human arm only
    recipe = load_recipe("recipes/demo.yaml", ["report.convergence.factor=2", "mixes.arms.0.seeds=[0,1,2]"])
    steps = plan(recipe)
    trains = [s for s in steps if s.kind == "train"]
    runs = [s for s in trains if "check" not in s.labels]
    checks = [s for s in trains if "check" in s.labels]
    assert len(checks) == len(recipe.mixes.arms)  # one seed of each arm's largest N
    ladder = {a.name: recipe.mixes.sizes_of(a) for a in recipe.mixes.arms}
    seeds = {a.name: recipe.mixes.seeds_of(a) for a in recipe.mixes.arms}
    assert seeds["human"] == [0, 1, 2] and seeds["synthetic"] == recipe.mixes.seeds
    assert sorted((s.labels["arm"], s.labels["n"], s.labels["seed"]) for s in runs) == sorted(
        (arm, n, seed) for arm, sizes in ladder.items() for n in sizes for seed in seeds[arm])
    check = recipe.report.convergence
    assert sorted((s.labels["arm"], s.labels["n"], s.labels["seed"]) for s in checks) == sorted(
        (arm, max(sizes), seed) for arm, sizes in ladder.items() for seed in check.seeds)
    twin = {(s.labels["arm"], s.labels["n"], s.labels["seed"]): s for s in runs}
    for c in checks:
        base = twin[(c.labels["arm"], c.labels["n"], c.labels["seed"])]
        assert c.config["mix"] == base.config["mix"] and c.deps == base.deps  # same data, only the budget
        assert c.config["train"]["tokens"] == check.factor * base.config["train"]["tokens"]
    evals = [s for s in steps if s.kind == "eval" and s.labels.get("role") == "check"]
    report = next(s for s in steps if s.kind == "report")
    assert len(evals) == len(checks) and {e.id for e in evals} <= set(report.deps)
    # the arm's ladder and seeds are not part of a run: the same run under mixes.sizes/seeds keeps its id
    other = load_recipe("recipes/demo.yaml", ["mixes.arms.1.sizes=null"])
    same = [s for s in plan(other) if s.kind == "train" and "check" not in s.labels]
    for arm, kept in (("synthetic", lambda s: True), ("human", lambda s: s.labels["seed"] < 2)):
        assert {s.id for s in runs if s.labels["arm"] == arm and kept(s)} == \
            {s.id for s in same if s.labels["arm"] == arm}
