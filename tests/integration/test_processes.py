"""A training step runs with the processes it was given, not the accelerate YAML's ``num_processes``.

Run: pytest tests/integration/test_processes.py -q      (about 1-2 minutes on 2 cores)

The tiny recipe's human-only student runs on the local executor with ``launcher.processes=4`` and
``recipes/accelerate/ddp.yaml`` (whose ``num_processes`` says 2): four CPU processes (gloo) train it,
and they train the same model as one process (loss normalised over the global batch; 1e-5).
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from distill.allocation import read_config
from distill.pipeline.context import launch_of
from distill.pipeline.local import run_local
from distill.pipeline.run import prepare_run
from distill.training import TrainJob, train
from tests.pipeline_helpers import tiny_recipe

pytestmark = pytest.mark.integration
STEPS = 16


def _losses(folder) -> list[float]:
    return [json.loads(line)["loss"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_step_given_four_processes_trains_with_four(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    assert read_config("recipes/accelerate/ddp.yaml")["num_processes"] == 2
    recipe = tiny_recipe(tmp_path, "mixes.arms=[{name: human, fraction: 0.0}]", "mixes.sizes=[64]",
                         "mixes.seeds=[0]", f"train.tokens={STEPS * 8 * 128}", "train.global_batch_size=8",
                         "train.micro_batch_size=2", "train.accelerate_config=recipes/accelerate/ddp.yaml",
                         "launcher.processes=4")
    run_dir, steps, cache = prepare_run(recipe)
    keep = [s for s in steps if s.kind in ("tokenizer", "student", "human", "train")]
    outcome = run_local(run_dir, keep, cache, workers=1, launch=launch_of(recipe))  # its launcher.processes
    assert set(outcome.values()) == {"done"}, outcome
    folder = next(s for s in keep if s.kind == "train").folder(run_dir, cache)
    result = json.loads((folder / "result.json").read_text())
    assert (result["world_size"] == 4 and result["extra"]["accumulation"] == 1
            and result["extra"]["backend"] == "ddp")
    assert "1 node(s) x 4 process(es)" in (folder / "launch.log").read_text()

    job = TrainJob.load(folder / "job.json")
    one = dataclasses.replace(job, out_dir=str(tmp_path / "one"),
                              train=job.train.model_copy(update={"accelerate_config": None}))
    train(one)
    ours, ref = _losses(folder), _losses(tmp_path / "one")
    assert len(ours) == STEPS and max(abs(a - b) for a, b in zip(ours, ref)) < 1e-5
