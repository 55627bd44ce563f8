"""An SFT-then-preference arm through the CLI: the arm's SFT student, then a preference step that
starts from it, keeps it as the frozen reference and trains on the expert's pairs of the items it saw.
Run: pytest tests/smoke/test_preference_arm.py -q"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from distill.cli import main
from distill.pipeline.plan import plan
from distill.recipe import load_recipe

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes/tiny.yaml")
EDIT_APO = ["mixes.sizes=[30]", "mixes.seeds=[0]", "generation.num_prompts=40", "train.tokens=2048",
            "experts={kind: simulated, drafts: 30}",
            ("mixes.arms=[{name: edit-apo, fraction: 0.0, human: edited, objective: apo,"
             " preference: {epochs: 1.0, beta: 0.1, lr: 1.0e-3}}]")]


def test_preference_arm_trains_from_its_sft_student_on_the_pairs_it_saw(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    overrides = [f"output_dir={tmp_path}", *EDIT_APO]
    steps = {s.id: s for s in plan(load_recipe(TINY, overrides))}
    pref = next(s for s in steps.values() if s.kind == "train" and "objective" in s.labels)
    init = steps[pref.deps[0]]
    assert (init.kind == "train" and init.labels["init"] == "sft"
            and "objective" not in init.config["mix"]["arm"])

    assert main(["train", TINY, *overrides]) == 0
    folder, sft = (tmp_path / "tiny" / "steps" / s.id for s in (pref, init))
    job = json.loads((folder / "job.json").read_text())
    assert (job["objective"] == "apo"
            and job["model"]["model"] == job["reference"]["model"] == str(sft / "model"))
    pairs = json.loads((folder / "pairs.json").read_text())
    assert 0 < pairs["pairs"] <= pairs["rows_seen"] <= 30
    steps_run = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps_run and all("margin" in r for r in steps_run)  # the preference loop, not SFT's
    assert (json.loads((folder / "human_time.json").read_text())
            == json.loads((sft / "human_time.json").read_text()))
    before, after = (load_file(sft / "model" / "model.safetensors"),
                     load_file(folder / "model" / "model.safetensors"))
    assert any(not (before[k] == after[k]).all() for k in before)  # the preference step moved the SFT student
