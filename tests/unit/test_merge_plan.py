"""A merge deduplicated against the human pool (``generation.filters.dedup_against_human``): the pool is
a dependency and a reference part of the dedup stages; a merge without it keeps its step id.
Run: pytest tests/unit/test_merge_plan.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.pipeline.plan import plan
from distill.pipeline.slurm_executor import merge_stages
from distill.recipe import RecipeError, load_recipe
from distill.recipe.checks import check_recipe

pytestmark = pytest.mark.unit
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ON = "generation.filters.dedup_against_human=true"


def _ids(path: Path, *overrides: str) -> list[str]:
    return [s.id for s in plan(load_recipe(path, list(overrides)))]


@pytest.mark.parametrize("name", ["tiny.yaml", "generations.yaml", "teachers.yaml"])
def test_off_keeps_every_id_and_on_makes_each_merge_read_the_human_pool(name):
    assert _ids(RECIPES / name) == _ids(RECIPES / name, "generation.filters.dedup_against_human=false")
    steps = plan(load_recipe(RECIPES / name, [ON]))
    (human,) = [s for s in steps if s.kind == "human"]
    merges = [s for s in steps if s.kind == "merge"]
    assert merges and all(human.id in m.deps and m.config["filters"]["dedup_against_human"] for m in merges)
    assert not {m.id for m in merges} & set(_ids(RECIPES / name))  # what it computes changed: a new id


def test_an_accumulating_lineage_also_deduplicates_against_its_earlier_generations():
    steps = plan(load_recipe(RECIPES / "generations.yaml", [ON, "generations.count=3"]))
    by_id = {s.id: s for s in steps}
    for policy in ("replace", "accumulate", "accumulate-subsample"):
        merges = sorted((s for s in steps if s.kind == "merge" and s.labels.get("policy", policy) == policy
                         and s.labels["seed"] == 0), key=lambda s: s.labels["generation"])
        earlier = [[d for d in m.deps if by_id[d].kind == "merge"] for m in merges]
        if policy == "replace":  # it trains on the newest generation only: nothing earlier to repeat
            assert earlier == [[], [], []]
        else:  # generation 1 is every policy's (the same teacher, no earlier data): no policy label
            assert earlier == [[], [merges[0].id], [merges[0].id, merges[1].id]], policy
        assert [dict(merge_stages(m, by_id))["signatures"] for m in merges][1:] == [
            by_id[merges[1].deps[0]].config["shards"] + 1 + len(earlier[1]),
            by_id[merges[2].deps[0]].config["shards"] + 1 + len(earlier[2])]


def test_the_slurm_signature_array_gets_a_task_for_the_human_pool():
    for overrides, signatures in (([], 2), ([ON], 3)):  # tiny.yaml: 2 generation shards
        steps = plan(load_recipe(RECIPES / "tiny.yaml", overrides))
        by_id = {s.id: s for s in steps}
        merge = next(s for s in steps if s.kind == "merge")
        assert dict(merge_stages(merge, by_id))["signatures"] == signatures


def test_a_world_without_a_human_pool_is_refused_at_validate():
    recipe = load_recipe(RECIPES / "tiny.yaml", [ON, "world={kind: reasoning_gym, dataset: chain_sum}",
                                                 "mixes.arms=[{name: synthetic, fraction: 1.0}]",
                                                 "eval.tasks=[distill_reasoning_gym]"])
    with pytest.raises(RecipeError, match="dedup_against_human=true but world.human_pool is not set"):
        check_recipe(recipe, "tiny.yaml", tasks=False)
