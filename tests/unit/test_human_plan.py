"""The human-effort recipe: validation, expert steps in the DAG, arms that combine sources.
Run: pytest tests/unit/test_human_plan.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.mixing import Arm, Pool, Wall, plan_mix
from distill.pipeline.plan import plan
from distill.recipe import RecipeError, load_recipe

pytestmark = pytest.mark.unit
RECIPE = Path(__file__).resolve().parents[2] / "recipes/human-effort.yaml"


def test_expert_steps_feed_the_arms_that_use_them():
    steps = plan(load_recipe(RECIPE))
    experts = {s.config["primitive"]: s for s in steps if s.kind == "expert"}
    assert sorted(experts) == ["edited", "first_error", "picked"]
    merge = next(s for s in steps if s.kind == "merge")
    assert all(s.deps == (merge.id,) for s in experts.values())
    for s in (s for s in steps if s.kind == "train"):
        source = s.config["mix"]["arm"].get("human", "human")
        worked = [d for d in s.deps if d in {e.id for e in experts.values()}]
        assert worked == ([experts[source].id] if source != "human" else [])
    human = next(s for s in steps if s.kind == "human")
    assert human.config["write_s"] == 30  # human-written rows are priced in the ledger


def test_arms_written_from_scratch_keep_their_slice():
    steps = plan(load_recipe(RECIPE))
    plain = next(s for s in steps if s.kind == "train" and s.labels["arm"] == "human")
    assert "human" not in plain.config["mix"]["arm"]  # so recipes without human effort keep their step ids


@pytest.mark.parametrize("override, message", [
    ("generation.samples_per_prompt=1", "samples_per_prompt >= 2"),
    ("experts=null", "no experts section"),
    ("experts.kind=model", "experts.model is required"),
    ("mixes.arms.2.human=edits", "edits"),
])
def test_bad_human_effort_settings_fail_at_load_time(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(RECIPE, [override])


def test_an_arm_may_combine_edited_and_synthetic_sources():
    pools = {"edited": Pool("edited", "human", tuple(f"e{i}" for i in range(40)), (10,) * 40),
             "synthetic": Pool("synthetic", "synthetic", tuple(f"s{i}" for i in range(80)), (10,) * 80)}
    mix = plan_mix(Arm(name="edited-synthetic", fraction=0.5, human="edited", synthetic="synthetic"), 60, 0,
                   pools,
                   wall=Wall(policy="repeat"))
    assert mix.feasible and mix.counts == {"edited": 30, "synthetic": 30}
