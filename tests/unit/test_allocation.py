"""Training processes come from the allocation, and impossible resources are refused up front.

Run: pytest tests/unit/test_allocation.py -q
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from distill.allocation import Allocation, from_environment, resource_problems
from distill.cli import main
from distill.recipe import load_recipe
from distill.training.launch import launch_command, node_command

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SLURM = {"SLURM_JOB_ID": "7", "SLURM_NNODES": "2", "SLURM_GPUS_ON_NODE": "8"}


@pytest.mark.parametrize("env, requested, expected", [
    ({}, None, Allocation(1, 1)),
    ({"CUDA_VISIBLE_DEVICES": "0,1,2"}, None, Allocation(3, 1)),
    ({"CUDA_VISIBLE_DEVICES": "0,1,2"}, 1, Allocation(1, 1)),
    ({"DISTILL_PROCESSES_PER_NODE": "4"}, None, Allocation(4, 1)),
    (SLURM, None, Allocation(8, 2)),
    ({**SLURM, "SLURM_GPUS_ON_NODE": ""}, None, Allocation(1, 2)),
    ({**SLURM, "SLURM_GPUS_ON_NODE": ""}, 4, Allocation(4, 2)),
])
def test_allocation_comes_from_the_environment(env, requested, expected):
    assert from_environment({"CUDA_VISIBLE_DEVICES": "", **env}, requested) == expected


def test_node_command_takes_rank_and_address_from_slurm():
    env = {"DISTILL_NODES": "2", "DISTILL_PROCESSES_PER_NODE": "8", "DISTILL_MAIN_ADDRESS": "n1",
           "DISTILL_MAIN_PORT": "29511", "SLURM_NODEID": "1"}
    argv = node_command("job.json", "recipes/accelerate/zero3.yaml", env)
    pairs = dict(itertools.pairwise(argv))
    assert (pairs["--num_processes"], pairs["--num_machines"], pairs["--machine_rank"]) == ("16", "2", "1")
    assert (pairs["--main_process_ip"], pairs["--main_process_port"]) == ("n1", "29511")
    with pytest.raises(RuntimeError, match="SLURM_NODEID"):
        node_command("job.json", "recipes/accelerate/zero3.yaml", {**env, "SLURM_NODEID": ""})
    assert "--num_processes" in launch_command("job.json", "recipes/accelerate/ddp.yaml", num_processes=4)


def test_shipped_recipes_have_workable_resources():
    from distill.cli import shipped_recipes

    for path in shipped_recipes():
        assert resource_problems(load_recipe(path)) == [], path


@pytest.mark.parametrize("recipe, overrides, fragment", [
    ("gsm8k/multinode", ["train.accelerate_config=null"], "launcher.slurm.train.nodes=2"),
    ("gsm8k/multinode", ["launcher.slurm.train.processes_per_node=4"], "differs from gpus_per_node=8"),
    ("gsm8k/multinode", ["train.global_batch_size=24", "train.micro_batch_size=2"],
     "train.global_batch_size=24"),
    ("gsm8k/multinode", ["generation.vllm.tensor_parallel_size=16"], "tensor_parallel_size=16"),
    ("tiny", ["launcher.processes=4"], "launcher.processes=4"),
    ("tiny", ["launcher.slurm.train.gpus_per_node=4"], "4 processes"),
    ("tiny", ["train.accelerate_config=recipes/accelerate/nope.yaml"], "nope.yaml"),
])
def test_validate_refuses_resources_that_cannot_work(recipe, overrides, fragment, capsys):
    assert main(["validate", recipe, *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_multinode_scripts_give_the_ceiling_its_own_resources(tmp_path, monkeypatch, capsys):
    """The rendered gsm8k/multinode scripts: training on 2 nodes, the 70B teacher's evaluation with the
    generation resources (8 GPUs, vLLM tensor parallel 8), the students' evaluations on one GPU."""
    from distill.pipeline.run import run_recipe

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe(ROOT / "recipes/gsm8k/multinode.yaml", [f"output_dir={tmp_path}"])
    assert run_recipe(recipe, launcher="slurm", dry_run=True, scripts_dir=tmp_path / "s") == 0
    text = {p.name.split("-", 1)[1]: p.read_text() for p in (tmp_path / "s").glob("*.sbatch")}
    assert "--gres=gpu:8" in text["ceiling.sbatch"] and "--gres=gpu:1" in text["eval.sbatch"]
    assert "--nodes=2" in text["train.sbatch"] and "DISTILL_ACCELERATE_CONFIG" not in text["train.sbatch"]
