"""Online KD through the CLI: `train.kd.source: online` hands each mix's student the recipe's teacher,
whose logits it matches while it trains (the teacher is in the train step's slice and id).
Run: pytest tests/smoke/test_online_kd.py -q"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.cli import main
from distill.pipeline.plan import plan
from distill.recipe import load_recipe

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes/tiny.yaml")
SMALL = ["mixes.sizes=[50]", "mixes.seeds=[0]", "mixes.arms=[{name: synthetic, fraction: 1.0}]",
         "generation.num_prompts=60", "train.tokens=2048"]
ONLINE = ["train.kd.weight=0.5", "train.kd.source=online"]


def test_online_kd_trains_against_the_recipes_teacher(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    overrides = [f"output_dir={tmp_path}", *SMALL, *ONLINE]
    steps = plan(load_recipe(TINY, overrides))
    teacher = next(s for s in steps if s.kind == "teacher")
    train = next(s for s in steps if s.kind == "train")
    assert train.config["teacher"] == {"step": teacher.id} and teacher.id in train.deps
    stored = next(s for s in plan(load_recipe(TINY, overrides[:-2])) if s.kind == "train")
    assert "teacher" not in stored.config and stored.id != train.id

    assert main(["train", TINY, *overrides]) == 0
    folder = next((tmp_path / "tiny" / "steps").glob("train-*"))
    job = json.loads((folder / "job.json").read_text())
    assert job["teacher"]["model"].endswith("/model") and teacher.id in job["teacher"]["model"]
    kls = [json.loads(line)["kl"] for line in (folder / "metrics.jsonl").read_text().splitlines()
           if "kl" in json.loads(line)]
    assert kls and all(k > 0 for k in kls), kls  # the KL term was computed against the teacher's logits
