"""A reasoning-gym task other than GSM-Symbolic (chain_sum: no worked solutions, so no human pool) end to
end at toy size: tokenizer and teacher built on the world, generation, merge with the verifier, synthetic
and verified arms, lm-eval's distill_reasoning_gym task, the report. The verifier and the eval score are
checked against the dataset's own ``score_answer``, recomputed here from reasoning-gym itself.
Run: .venv/bin/python -m pytest tests/smoke/test_reasoning_gym_recipe.py -q"""
from __future__ import annotations

import json
import os

import pytest

from distill.pipeline.run import run_recipe
from distill.sources import load_source, meta_of
from distill.world.adapters import gsm8k_final
from tests.pipeline_helpers import tiny_recipe

pytestmark = pytest.mark.smoke
WORLD = ("world={kind: reasoning_gym, dataset: chain_sum, config: {min_terms: 2, max_terms: 2, "
         "max_digits: 1}, "
         "test_size: 40, val_size: 20}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rg")
    old = os.environ.get("DISTILL_CACHE")
    os.environ["DISTILL_CACHE"] = str(out / "cache")
    recipe = tiny_recipe(out, WORLD, "mixes.sizes=[20, 40]", "mixes.seeds=[0]",
                         "mixes.arms=[{name: synthetic, fraction: 1.0}, {name: verified, fraction: 1.0, "
                         "synthetic: verified}]", "eval.tasks=[distill_reasoning_gym]",
                         "generation.num_prompts=60", "generation.temperature=1.0",
                         "generation.max_new_tokens=12")
    try:
        assert run_recipe(recipe) == 0
    finally:
        os.environ.pop("DISTILL_CACHE", None) if old is None else os.environ.update(DISTILL_CACHE=old)
    return recipe, out / recipe.name, out / "cache"


def _own_score(recipe, entry: dict, answer: str | None) -> float:
    """The dataset's score_answer, from a dataset built here (not the world module's)."""
    import reasoning_gym

    return reasoning_gym.create_dataset(recipe.world.dataset, seed=0, size=1, **recipe.world.config) \
        .score_answer(answer, entry)


def test_every_stage_ran_and_the_world_has_no_human_pool(run):
    _, run_dir, cache = run
    kinds = {p.parent.name.split("-")[0]
             for p in [*run_dir.glob("steps/*/DONE"), *cache.glob("steps/*/DONE")]}
    assert (kinds
            == {"tokenizer", "teacher", "student", "human", "generate", "merge", "train", "eval", "report"})
    assert len(load_source(next(run_dir.glob("steps/human-*")) / "source")) == 0
    records = json.loads(next(run_dir.glob("steps/report-*/records.json")).read_text())
    assert len(records["runs"]) == 2 * 2 and records["ceiling"] is not None


def test_the_merge_verifies_with_the_datasets_own_scorer(run):
    recipe, run_dir, cache = run
    merge = next(run_dir.glob("steps/merge-*"), None) or next(cache.glob("steps/merge-*"))
    synthetic = list(load_source(merge / "synthetic"))
    verified = {r["id"] for r in load_source(merge / "verified")}
    assert 0 < len(verified) < len(synthetic)  # the scorer said yes and no: the check below can fail
    for row in synthetic:
        entry = json.loads(meta_of(row)["entry"])
        assert (row["id"] in verified) is (_own_score(recipe, entry, gsm8k_final(row["completion"])) == 1.0)


def test_lm_eval_scores_with_the_datasets_own_scorer(run):
    recipe, run_dir, _ = run
    items = []
    for path in run_dir.glob("steps/eval-*/results.json"):
        results = json.loads(path.read_text())
        if results.get("feasible", True):  # a verified arm may lack the rows for its N
            items += results["tasks"]["distill_reasoning_gym"]["items"]
    assert len(items) >= 3 * recipe.world.test_size  # students and the floor (the ceiling may be cached)
    from distill.world import reasoning_gym as rg

    assert {i["correct"] for i in items} == {0, 1}  # the ceiling gets some right
    entries = {f"test-{i}": item for i, item in rg.entries(recipe.world, "test", recipe.world.test_size)}
    for item in items:
        expected = _own_score(recipe, entries[item["id"]], gsm8k_final(item["response"]))
        assert item["correct"] == int(expected == 1.0) and item["score"] == expected
