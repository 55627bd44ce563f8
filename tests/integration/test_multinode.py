"""Training on two Slurm nodes: the real step.sbatch template, srun, accelerate launch, ZeRO-3 on CPU.

Needs the two-node local cluster: sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh
Run: pytest tests/integration/test_multinode.py -q      (about 3-4 minutes on 2 cores)

A human-only student of the tiny recipe is trained by the Slurm executor with ``nodes: 2`` (one
process per node, ZeRO-3) and compared with the same job in one process: the loss is normalised over
the global batch, so the two must agree (asserted 1e-5, as the one-node DeepSpeed tests). Then the
same step is requeued with ``scontrol requeue`` while it trains and must end on the same weights.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

from distill import slurm
from distill.pipeline.run import prepare_run
from distill.pipeline.slurm_executor import submit_run
from distill.training import TrainJob, train
from tests.pipeline_helpers import tiny_recipe

pytestmark = pytest.mark.integration
STEPS, EVERY = 48, 8
MULTINODE = [
    "mixes.arms=[{name: human, fraction: 0.0}]", "mixes.sizes=[64]", "mixes.seeds=[0]",
    f"train.tokens={STEPS * 8 * 128}", "train.global_batch_size=8", "train.micro_batch_size=2",
    f"train.checkpoint_every={EVERY}", "train.accelerate_config=recipes/accelerate/zero3.yaml",
    "launcher.slurm.train.nodes=2", "launcher.slurm.train.processes_per_node=1",
    "launcher.slurm.train.mem=1G", "tracking.wandb.mode=offline",
]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILL_CACHE", str(path))
        yield path


def _submit(out: Path, wait: bool):
    """The train step and what it needs (tokenizer, student, human data) on the Slurm executor."""
    run_dir, steps, cache = prepare_run(tiny_recipe(out, *MULTINODE))
    keep = [s for s in steps if s.kind in ("tokenizer", "student", "human", "train")]
    assert submit_run(tiny_recipe(out, *MULTINODE), run_dir, keep, cache, wait=wait) == 0
    return run_dir, next(s for s in keep if s.kind == "train").folder(run_dir, cache)


def _losses(folder: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def two_node_step(tmp_path_factory, shared_cache, two_node_cluster) -> Path:
    t0 = time.time()
    _, folder = _submit(tmp_path_factory.mktemp("two-nodes"), wait=True)
    print(f"two-node ZeRO-3 step through Slurm: {time.time() - t0:.1f}s")
    return folder


def test_two_nodes_train_like_one_process(two_node_step, tmp_path):
    folder = two_node_step
    result = json.loads((folder / "result.json").read_text())
    assert result["world_size"] == 2 and result["extra"]["backend"] == "deepspeed-zero3"
    launch_log = (folder / "launch.log").read_text()
    assert "2 node(s) x 1 process(es)" in launch_log and "srun --nodes=2" in launch_log
    # exactly one process wrote the step's files: one meta.json, one done-marker, one model, one W&B run
    assert [p.name for p in folder.rglob("meta.json")] == ["meta.json"]
    assert [p.name for p in folder.rglob("DONE")] == ["DONE"]
    assert len(list(folder.rglob("model.safetensors"))) == 1
    assert json.loads((folder / "meta.json").read_text())["step"]["kind"] == "train"
    run_dir = folder.parents[1]
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1  # only the train step is tracked here

    job = TrainJob.load(folder / "job.json")
    one = dataclasses.replace(job, out_dir=str(tmp_path / "one"),
                              train=job.train.model_copy(update={"accelerate_config": None}))
    train(one)
    ours, ref = _losses(folder), _losses(tmp_path / "one")
    assert len(ours) == STEPS and max(abs(a - b) for a, b in zip(ours, ref)) < 1e-5
    ref_weights = _weights(tmp_path / "one")
    for name, tensor in _weights(folder).items():
        assert torch.allclose(tensor, ref_weights[name], atol=1e-4), name


def test_requeued_two_node_job_resumes_to_the_same_weights(two_node_step, tmp_path, shared_cache):
    run_dir, folder = _submit(tmp_path / "requeue", wait=False)
    jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())
    train_job = next(j["job_id"] for j in jobs.values() if any(s.startswith("train-") for s in j["steps"]))
    marker = folder / "checkpoints" / f"step-{EVERY}" / "trainer_state.json"
    deadline = time.time() + 600
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists() and not (folder / "result.json").exists(), "the job ended before its requeue"
    subprocess.run(["scontrol", "requeue", train_job], check=True, capture_output=True, text=True)
    final = slurm.wait([j["job_id"] for j in jobs.values()], timeout=900)
    assert all(s.startswith("COMPLETED") for s in final.values()), final
    shown = subprocess.run(["scontrol", "-o", "show", "job", train_job], capture_output=True, text=True,
                           check=True).stdout
    assert "Restarts=1" in shown
    result = json.loads((folder / "result.json").read_text())
    assert result["resumed_from"] >= EVERY and result["world_size"] == 2
    assert [json.loads(x)["step"] for x in (folder / "metrics.jsonl").open()] == list(range(1, STEPS + 1))
    ref = _weights(two_node_step)
    for name, tensor in _weights(folder).items():
        assert torch.equal(tensor, ref[name]), name
    assert [p.name for p in folder.rglob("DONE")] == ["DONE"]
