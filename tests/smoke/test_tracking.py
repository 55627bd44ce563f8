"""W&B tracking, offline for real: log, read the run back from its .wandb file, no secret leaks.

Run: pytest tests/smoke/test_tracking.py -q   (~10 s; no network, W&B runs offline under a temp dir)
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from distill.recipe.schema import Tracking, Wandb
from distill.tracking import (
    REDACTED,
    NullTracker,
    offline_runs,
    read_offline_run,
    resolve_mode,
    scrub,
    scrub_argv,
    secret_values,
    start_tracker,
)

pytestmark = pytest.mark.smoke

SECRET = "sk-test-0123456789abcdefXYZ"
HF_SECRET = "hfsecret-987654321"


def test_mode_resolution():
    assert resolve_mode(Wandb(), env={}) == "offline"
    assert resolve_mode(Wandb(), env={"WANDB_API_KEY": "x" * 40}) == "online"
    assert resolve_mode(Wandb(mode="offline"), env={"WANDB_API_KEY": "x" * 40}) == "offline"
    assert resolve_mode(Wandb(mode="disabled"), env={}) == "disabled"
    assert resolve_mode(Wandb(mode="online"), env={"WANDB_MODE": "offline"}) == "offline"
    assert resolve_mode(Wandb(), env={"WANDB_MODE": "dryrun"}) == "offline"


def test_scrub_keys_and_env_values():
    env = {"OPENAI_API_KEY": SECRET, "HF_TOKEN": HF_SECRET, "TOKENIZERS_PARALLELISM": "false",
           "MY_KEY": "no", "HOME": "/root"}
    secrets = secret_values(env)
    assert set(secrets) == {SECRET, HF_SECRET}
    cfg = {"openai": {"api_key_env": "OPENAI_API_KEY", "api_key": "abc", "base_url": f"http://x?k={SECRET}"},
           "hf_token": "whatever", "tokenizer": {"eos_token": "<eos>"}, "train": {"tokens": 1000},
           "note": f"token {HF_SECRET} inline", "flag": "false", "list": [SECRET, 3]}
    out = scrub(cfg, secrets)
    assert out["openai"]["api_key_env"] == "OPENAI_API_KEY"  # a variable's name, not a secret
    assert out["openai"]["api_key"] == REDACTED and out["hf_token"] == REDACTED
    assert SECRET not in str(out) and HF_SECRET not in str(out)
    assert out["tokenizer"]["eos_token"] == "<eos>" and out["train"]["tokens"] == 1000
    assert out["flag"] == "false" and out["list"][1] == 3
    assert scrub("key sk-abcdefghijklmnopqrstuvwx here", []) == f"key {REDACTED} here"


def test_disabled_and_non_zero_rank_are_null(tmp_path):
    assert isinstance(start_tracker(Tracking(wandb=Wandb(mode="disabled")), sweep="s", stage="train",
                                    step_id="x", config={}, dir=tmp_path, env={}), NullTracker)
    assert isinstance(start_tracker(Wandb(), sweep="s", stage="train", step_id="x", config={},
                                    dir=tmp_path, env={"WANDB_MODE": "offline", "RANK": "1"}), NullTracker)
    assert not list(tmp_path.iterdir())


def test_argv_scrubbing():
    argv = ["distill", "run", "r.yaml", "generation.openai.api_key=abc123", "--hf-token", "tok456", "--lr",
            "3",
            f"note={SECRET}"]
    assert scrub_argv(argv, [SECRET]) == ["distill", "run", "r.yaml", f"generation.openai.api_key={REDACTED}",
                                          "--hf-token", REDACTED, "--lr", "3", f"note={REDACTED}"]


def test_offline_run_reads_back_and_leaks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_TEST_API_KEY", SECRET)
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    argv = list(sys.argv)
    monkeypatch.setattr(sys, "argv", [*argv, "openai.api_key=plainsecret99", "--wandb-token", "tok-secret-77",
                                      f"--note={HF_SECRET}"])
    recipe = {"name": "demo", "generation": {"openai": {"api_key_env": "OPENAI_API_KEY", "api_key": SECRET}},
              "comment": f"copied by mistake: {HF_SECRET}"}
    png = tmp_path / "curve.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(2, 2)).gca().plot([0, 1], [0, 1])
    plt.savefig(png)
    plt.close("all")

    tracker = start_tracker(Wandb(project="distill-test"), sweep="sweep-a", stage="report",
                            step_id="report-1234",
                            config=recipe, lineage={"train": "abc123"}, dir=tmp_path)
    assert tracker.mode == "offline"
    for step, score in enumerate([0.25, 0.5, 0.75]):
        tracker.log({"eval/score": score, "note": f"step {step} {SECRET}"}, step=step)
    tracker.log_table("fits", [{"arm": "human", "y_inf": 0.9, "ci": [0.8, 1.0]},
                               {"arm": "synthetic", "y_inf": 0.7, "ci": [0.6, 0.8]}], step=3)
    tracker.log_images({"curves": png}, step=3)
    tracker.summary({"verdict": "synthetic saturates", "secret_echo": SECRET})
    tracker.finish()
    assert "tok-secret-77" in sys.argv  # argv is only masked while W&B reads it

    (run_dir,) = offline_runs(tmp_path)
    assert run_dir == tracker.run_dir
    back = read_offline_run(run_dir)
    assert back["run"] == {"group": "sweep-a", "job_type": "report", "name": "report-1234",
                           "project": "distill-test"}
    assert back["config"]["name"] == "demo" and back["config"]["lineage"] == {"train": "abc123"}
    assert back["config"]["generation"]["openai"]["api_key"] == REDACTED
    scores = [row["eval/score"] for row in back["history"] if "eval/score" in row]
    assert scores == [0.25, 0.5, 0.75]
    assert back["summary"]["verdict"] == "synthetic saturates"
    assert back["summary"]["eval/score"] == 0.75
    assert back["tables"]["fits"]["columns"] == ["arm", "y_inf", "ci"]
    assert back["tables"]["fits"]["data"][1][:2] == ["synthetic", 0.7]
    assert list(run_dir.glob("files/media/images/curves_*.png"))

    for path in run_dir.rglob("*"):  # neither secret appears anywhere W&B wrote, in any form
        if path.is_file():
            blob = path.read_bytes()
            for secret in (SECRET, HF_SECRET, "plainsecret99", "tok-secret-77"):
                assert secret.encode() not in blob, (secret, path)

    sync = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", str(run_dir)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert sync.returncode == 0, sync.stderr
    assert "Would sync 1 run" in sync.stdout + sync.stderr
