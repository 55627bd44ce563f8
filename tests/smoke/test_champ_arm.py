"""CHAMP's first-error marks as an arm's data (``experts.kind: source``), through the CLI: the expert
step takes the folder's rows as they are (no drafts shown, nothing simulated), and the arm's students
train on them with CHAMP's marks masking what follows each first wrong step.
Run: pytest tests/smoke/test_champ_arm.py -q"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.cli import main
from distill.pipeline.run import planned
from distill.recipe import load_recipe
from distill.sources import load_source

pytestmark = pytest.mark.smoke
pytest.importorskip("champ_dataset", reason="champ-dataset is not installed (pip install -e '.[champ]')")
TINY = str(Path(__file__).resolve().parents[2] / "recipes/tiny.yaml")


def test_champ_marks_train_an_arm(tmp_path, monkeypatch):
    from distill.human import champ

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    assert champ.main([str(tmp_path / "champ"), "--mark-s", "9"]) == 0
    overrides = [f"output_dir={tmp_path / 'runs'}", "mixes.sizes=[50]", "mixes.seeds=[0]",
                 "train.tokens=2048", f"experts={{kind: source, source: {tmp_path / 'champ'}}}",
                 "mixes.arms=[{name: marks, fraction: 0.0, human: first_error}]"]
    steps = {s.id: s for s in planned(load_recipe(TINY, overrides))}
    expert = next(s for s in steps.values() if s.kind == "expert")
    train = next(s for s in steps.values() if s.kind == "train")
    assert list(expert.inputs) == [str(tmp_path / "champ")]  # other marks in the folder: a new expert step
    assert main(["train", TINY, *overrides]) == 0

    run = tmp_path / "runs" / "tiny" / "steps"
    work = json.loads((run / expert.id / "work.json").read_text())
    assert work["expert"] == "source" and work["from"] == str(tmp_path / "champ") and not work["simulated"]
    assert work["rows"] == 540 and work["human_s"] == pytest.approx(540 * 9.0)
    rows = list(load_source(run / expert.id / "source"))
    assert {r["origin"] for r in rows} == {"first_error"}
    assert all(json.loads(r["meta"])["simulated"] is False for r in rows)
    spent = json.loads((run / train.id / "human_time.json").read_text())
    assert spent["sources"] == {"first_error": {"rows": 50, "human_s": pytest.approx(50 * 9.0)}}
    assert (run / train.id / "model" / "model.safetensors").exists()
