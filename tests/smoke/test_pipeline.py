"""The DAG on the local executor: a whole tiny sweep, a rerun that does no work, a changed training
knob refused in the same folder (another experiment), and a new seed that runs only its own training,
evaluation and report steps.
Run: pytest tests/smoke/test_pipeline.py -q"""
from __future__ import annotations

import json

import pytest

from distill.pipeline.run import run_recipe
from distill.recipe import RecipeError
from tests.pipeline_helpers import done_markers, tiny_recipe

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    import os

    path = tmp_path_factory.mktemp("distill_cache")
    old = os.environ.get("DISTILL_CACHE")
    os.environ["DISTILL_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DISTILL_CACHE", None)
    else:
        os.environ["DISTILL_CACHE"] = old


def test_rerun_does_no_work_and_an_extension_runs_only_its_new_steps(tmp_path, cache):
    recipe = tiny_recipe(tmp_path)
    run_dir = tmp_path / recipe.name
    assert run_recipe(recipe) == 0
    first = done_markers(run_dir, cache)
    kinds = {sid.split("-")[0] for sid in first}
    assert (kinds
            == {"tokenizer", "teacher", "student", "human", "generate", "merge", "train", "eval", "report"})
    records = json.loads(next(run_dir.glob("steps/report-*/records.json")).read_text())
    assert len(records["runs"]) == 2 * 3 * 2 and records["ceiling"] is not None

    assert run_recipe(recipe) == 0
    assert done_markers(run_dir, cache) == first, "a rerun of a finished sweep redid work"

    with pytest.raises(RecipeError, match="holds another experiment"):  # a new lr replaces its runs
        run_recipe(tiny_recipe(tmp_path, "train.lr=1e-3"))
    assert done_markers(run_dir, cache) == first

    assert run_recipe(tiny_recipe(tmp_path, "mixes.seeds=[0, 1, 2]")) == 0
    after = done_markers(run_dir, cache)
    new = {sid.split("-")[0] for sid in set(after) - set(first)}
    assert new == {"train", "eval", "report"}
    assert all(after[sid] == first[sid] for sid in first), "an upstream step was redone"
    n_new_evals = sum(sid.startswith("eval-") for sid in set(after) - set(first))
    assert n_new_evals == 2 * 3, "one evaluation per new student; teacher and floor are kept"


def test_steps_log_to_wandb_offline_grouped_by_sweep_without_reading_the_recipe(tmp_path, cache):
    """Every kind of step of a sweep runs with the run folder's recipe.yaml gone: what a step needs
    comes from its config and from what the launcher passed (its W&B settings among them)."""
    from distill.pipeline.context import launch_of
    from distill.pipeline.local import run_local
    from distill.pipeline.run import prepare_run
    from distill.pipeline.state import RECIPE_FILE
    from distill.tracking import offline_runs, read_offline_run

    recipe = tiny_recipe(tmp_path, "mixes.sizes=[50, 100, 200]", "mixes.seeds=[0]",
                         "mixes.arms=[{name: human, fraction: 0.0}]", "tracking.wandb.mode=offline")
    run_dir, steps, cache_dir = prepare_run(recipe)
    (run_dir / RECIPE_FILE).unlink()
    outcome = run_local(run_dir, steps, cache_dir, recipe.launcher.workers, launch=launch_of(recipe))
    assert set(outcome.values()) == {"done"}, outcome
    assert not (run_dir / RECIPE_FILE).exists()
    runs = [read_offline_run(p) for p in offline_runs(run_dir)]
    kinds = sorted(r["run"]["job_type"] for r in runs)
    assert kinds == ["eval"] * 5 + ["report"] + ["train"] * 3
    assert {r["run"]["group"] for r in runs} == {"tiny"}
    train = next(r for r in runs if r["run"]["job_type"] == "train")
    assert train["history"] and "loss" in train["history"][-1] and train["config"]["train"]["lr"] == 3e-3
    # the step's resolved config: its defaults too, and what makes it this run (its mix)
    assert train["config"]["mix"]["n"] in (50, 100, 200) and "warmup_ratio" in train["config"]["train"]
    assert any(k.startswith("eval/") for r in runs if r["run"]["job_type"] == "eval" for k in r["summary"])
