"""The arm's objective in the DAG: an SFT-then-preference arm is two train steps, the objective is in
the second one's id only, and recipes without it keep every step id.
Run: pytest tests/unit/test_preference_plan.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.pipeline.plan import plan
from distill.recipe import RecipeError, load_recipe

pytestmark = pytest.mark.unit
RECIPE = Path(__file__).resolve().parents[2] / "recipes/human-effort.yaml"
DPO = "mixes.arms.4={name: picked, fraction: 0.0, human: picked, objective: dpo}"


def _trains(steps, arm):
    return [s for s in steps if s.kind == "train" and s.labels["arm"] == arm]


def test_a_preference_arm_is_its_sft_student_then_a_preference_step():
    sft_only, with_dpo = plan(load_recipe(RECIPE)), plan(load_recipe(RECIPE, [DPO]))
    before, after = _trains(sft_only, "picked"), _trains(with_dpo, "picked")
    inits = [s for s in after if s.labels.get("init") == "sft"]
    prefs = [s for s in after if s.labels.get("objective") == "dpo"]
    assert len(inits) == len(prefs) == len(before) == 6
    assert {s.id for s in inits} == {s.id for s in before}  # the SFT student is the SFT arm's step
    by_id = {s.id: s for s in with_dpo}
    for p in prefs:
        init = by_id[p.deps[0]]
        assert init in inits and set(init.deps) < set(p.deps)  # from the SFT student, on the same expert step
        assert p.config["mix"]["arm"]["objective"] == "dpo" and p.config["train"]["tokens"] is None
    evaluated = {s.deps[0] for s in with_dpo if s.kind == "eval"}
    assert evaluated >= {p.id for p in prefs} and not evaluated & {s.id for s in inits}


def test_objective_and_its_settings_change_only_the_preference_steps():
    dpo = {s.id for s in plan(load_recipe(RECIPE, [DPO]))}
    apo = {s.id for s in plan(load_recipe(RECIPE, [DPO.replace("dpo", "apo")]))}
    beta = {s.id for s in plan(load_recipe(RECIPE, [DPO.replace("}", ", preference: {beta: 0.5}}")]))}
    for other in (apo, beta):
        changed = {i.split("-")[0] for i in dpo ^ other}
        assert changed == {"train", "eval", "report"} and len(dpo - other) == 6 + 6 + 1


def test_sft_arms_carry_no_objective_in_their_slices():
    for s in plan(load_recipe(RECIPE)):
        if s.kind == "train":
            assert "objective" not in s.config["mix"]["arm"] and "preference" not in s.config["mix"]["arm"]
        if s.kind == "report":
            assert all("objective" not in a for a in s.config["mixes"]["arms"])


@pytest.mark.parametrize("arm, message", [
    ("{name: x, fraction: 0.0, objective: dpo}", "needs human: picked or edited"),
    ("{name: x, fraction: 1.0, human: picked, objective: apo}", "fraction < 1"),
    ("{name: x, fraction: 0.0, human: first_error, objective: dpo}", "has human=first_error"),
    ("{name: x, fraction: 0.0, human: picked, objective: kto}", "objective"),
])
def test_bad_objectives_fail_at_load_time(arm, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(RECIPE, [f"mixes.arms.4={arm}"])


def test_a_preference_step_reads_the_pairs_of_the_items_its_student_saw():
    from distill.pipeline.preference import seen_pairs

    rows = [{"id": f"r{i}", "row": True} for i in range(10)]
    only = [{"id": f"n{i}", "row": False} for i in range(4)]
    picked = seen_pairs(rows + only, {f"r{i}" for i in range(5)} | {"r-unpaired"}, rows=12)
    # 6 of the source's 12 rows seen (one without a pair): their 5 pairs, and half the pair-only ones
    assert [p["id"] for p in picked] == ["r0", "r1", "r2", "r3", "r4", "n0", "n1"]
    assert seen_pairs(rows + only, {r["id"] for r in rows}, rows=10)[-4:] == only  # all rows: all of them


START = ("mixes.arms.1={name: picked-dpo, fraction: 0.0, human: picked, objective: dpo, preference: "
         "{start: picked}}")


def test_a_preference_arm_can_start_from_an_sft_arms_students_without_training_its_own():
    steps = plan(load_recipe(RECIPE, [START]))
    sft, prefs = _trains(steps, "picked"), _trains(steps, "picked-dpo")
    assert len(sft) == len(prefs) == 6 and not any("init" in s.labels for s in steps if s.kind == "train")
    by_id = {s.id: s for s in steps}
    assert {by_id[p.deps[0]].id for p in prefs} == {s.id for s in sft}  # one preference step per SFT student
    for p in prefs:
        init = by_id[p.deps[0]]
        assert (init.labels["n"], init.labels["seed"]) == (p.labels["n"], p.labels["seed"])
        assert p.labels["objective"] == "dpo" and p.config["mix"]["arm"]["preference"]["start"] == "picked"
    # the SFT arm's steps are the ones it had without the preference arm
    assert {s.id for s in sft} == {s.id for s in _trains(plan(load_recipe(RECIPE)), "picked")}


@pytest.mark.parametrize("start, message", [
    ("nothing", "not an SFT arm of this recipe"),
    ("edited", r"differ in \['human'\]"),
])
def test_a_bad_preference_start_fails_at_load_time(start, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(RECIPE, [START.replace("start: picked", f"start: {start}")])


def test_a_preference_start_must_have_a_student_at_every_run():
    with pytest.raises(RecipeError, match=r"no student at \(n, seed\) \[\(1000, 0\)"):
        load_recipe(RECIPE, [START.replace("objective: dpo", "objective: dpo, sizes: [1000]")])
