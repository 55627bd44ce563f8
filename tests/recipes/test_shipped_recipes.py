"""Every shipped recipe is planned, its resources agree with its accelerate config, and its rendered
sbatch scripts pass ``sbatch --test-only`` on the local cluster (resources shrunk to what it has: no
GPUs, 1 GB, one core; multi-node training keeps its nodes, so the two-node cluster is needed).

Needs: sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh
Run: pytest -m recipes -q      (about 1 minute)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill import slurm
from distill.allocation import read_config, resource_problems, slurm_allocation
from distill.pipeline.plan import plan
from distill.pipeline.run import run_recipe
from distill.recipe import load_recipe

pytestmark = pytest.mark.recipes
ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted(p
                 for p in (ROOT / "recipes").rglob("*.yaml") if "accelerate" not in p.relative_to(ROOT).parts)
STAGES = ("generate", "train", "eval", "report", "ceiling")


def test_recipes_are_found():
    assert len(RECIPES) >= 5 and ROOT / "recipes/gsm8k/multinode.yaml" in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_recipe_plans_and_its_resources_agree(path, tmp_path):
    recipe = load_recipe(path, [f"output_dir={tmp_path}"])
    steps = plan(recipe)
    ids = [s.id for s in steps]
    assert steps and len(set(ids)) == len(ids)
    for i, step in enumerate(steps):  # a DAG in topological order: every input comes earlier
        assert all(d in ids[:i] for d in step.deps), (step.id, step.deps)
    assert resource_problems(recipe) == []
    res = recipe.launcher.slurm.train
    alloc = slurm_allocation(res)
    if res.gpus_per_node:
        assert alloc.processes_per_node == res.gpus_per_node  # one process per GPU
    if alloc.processes > 1:
        assert read_config(recipe.train.accelerate_config)["distributed_type"] != "NO"


def _fit(recipe, partition: str) -> list[str]:
    out = []
    for stage in STAGES:
        if getattr(recipe.launcher.slurm, stage) is None:
            continue
        out += [f"launcher.slurm.{stage}.{k}={v}" for k, v in
                (("gpus_per_node", 0), ("cpus_per_task", 1), ("mem", "1G"), ("partition", partition))]
    procs = recipe.launcher.slurm.train.processes_per_node or recipe.launcher.slurm.train.gpus_per_node or 1
    return out + [f"launcher.slurm.train.processes_per_node={procs}"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_rendered_scripts_pass_sbatch_test_only(path, tmp_path, two_node_cluster, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    shipped = load_recipe(path)
    recipe = load_recipe(path, [f"output_dir={tmp_path}", *_fit(shipped, two_node_cluster.partition)])
    assert run_recipe(recipe, launcher="slurm", dry_run=True, scripts_dir=tmp_path / "scripts") == 0
    scripts = sorted((tmp_path / "scripts").glob("*.sbatch"))
    assert scripts
    for script in scripts:
        slurm.submit(script, test_only=True)  # raises SlurmError with sbatch's one-line answer
    train = [s for s in scripts if s.name.endswith("-train.sbatch")]
    if train and shipped.launcher.slurm.train.nodes > 1:
        assert f"#SBATCH --nodes={shipped.launcher.slurm.train.nodes}" in train[0].read_text()
