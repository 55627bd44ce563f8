"""The Slurm executor against the real local cluster: the tiny recipe's report equals the local
executor's, and `--dry-run` scripts pass `sbatch --test-only`.
Run (needs `bash slurm/local/start.sh`): pytest tests/integration/test_pipeline_slurm.py -q"""
from __future__ import annotations

import json
import os

import pytest

from distill import slurm
from distill.pipeline.run import run_recipe
from tests.pipeline_helpers import ROOT, tiny_recipe

pytestmark = pytest.mark.integration


@pytest.fixture
def shared_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("DISTILL_CACHE", str(path))
    return path


def _records(run_dir):
    data = json.loads(next(run_dir.glob("steps/report-*/records.json")).read_text())
    key = lambda r: (r["arm"], r["n"], r["seed"])
    return (data["ceiling"], data["floor"],
            sorted(((key(r), r["score"], r["items"]) for r in data["runs"]), key=lambda t: t[0]))


def test_slurm_report_equals_local(tmp_path, shared_cache, slurm_cluster):
    # one thread per step on both sides: local steps get cores // workers, Slurm tasks cpus_per_task
    local = tiny_recipe(tmp_path / "local", f"launcher.workers={os.cpu_count()}")
    assert run_recipe(local) == 0
    on_slurm = tiny_recipe(tmp_path / "slurm")
    assert all(getattr(on_slurm.launcher.slurm, s).cpus_per_task == 1
               for s in ("generate", "train", "eval", "report"))
    assert run_recipe(on_slurm, launcher="slurm", wait=True) == 0
    assert _records(tmp_path / "slurm" / "tiny") == _records(tmp_path / "local" / "tiny")
    report = next((tmp_path / "slurm" / "tiny").glob("steps/report-*/report.md"))
    assert "Verdict" in report.read_text()


def test_dry_run_scripts_pass_sbatch_test_only(tmp_path, shared_cache, slurm_cluster, capsys):
    recipe = tiny_recipe(tmp_path)
    assert run_recipe(recipe, launcher="slurm", dry_run=True, scripts_dir=tmp_path / "scripts") == 0
    out = capsys.readouterr().out
    scripts = sorted((tmp_path / "scripts").glob("*.sbatch"))
    assert scripts and out.count("sbatch ") >= len(scripts)
    for script in scripts:
        slurm.submit(script, test_only=True)  # raises SlurmError with sbatch's message if rejected


GSM8K_LOCAL = ["launcher.slurm.generate.gpus_per_node=0", "launcher.slurm.train.gpus_per_node=0",
               "launcher.slurm.eval.gpus_per_node=0", "launcher.slurm.train.nodes=1"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "recipes/gsm8k").glob("*.yaml")))
def test_gsm8k_dry_run_scripts_pass_sbatch_test_only(name, tmp_path, shared_cache, slurm_cluster):
    """The real GSM8K recipes render; with resources shrunk to this one-node CPU cluster sbatch accepts
    them."""
    from distill.recipe import load_recipe

    fit = [f"launcher.slurm.{s}.{k}={v}" for s in ("generate", "train", "eval", "report")
           for k, v in (("mem", "1G"), ("cpus_per_task", 1), ("partition", slurm_cluster.partition))]
    recipe = load_recipe(ROOT / f"recipes/gsm8k/{name}.yaml", [f"output_dir={tmp_path}", *GSM8K_LOCAL, *fit])
    assert run_recipe(recipe, launcher="slurm", dry_run=True, scripts_dir=tmp_path / "scripts") == 0
    scripts = sorted((tmp_path / "scripts").glob("*.sbatch"))
    assert len(scripts) >= 5
    for script in scripts:
        slurm.submit(script, test_only=True)
    real = load_recipe(ROOT / f"recipes/gsm8k/{name}.yaml", [f"output_dir={tmp_path / 'real'}"])
    run_recipe(real, launcher="slurm", dry_run=True, scripts_dir=tmp_path / "real-scripts")
    train = next((tmp_path / "real-scripts").glob("*-train.sbatch")).read_text()
    assert f"--gres=gpu:{real.launcher.slurm.train.gpus_per_node}" in train
    assert "--requeue" in train and "--signal=B:USR1@" in train and "--open-mode=append" in train
