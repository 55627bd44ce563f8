"""Step marks as a verifier through the CLI: the first-error expert step's marks train a PRM and an
outcome-only scorer that rerank a student's samples; the report carries the comparison.
Run: pytest tests/smoke/test_verifier_step.py -q"""
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
VERIFY = ["mixes.sizes=[50, 100]", "mixes.seeds=[0, 1]", "mixes.arms=[{name: human, fraction: 0.0}]",
          "generation.num_prompts=60", "train.tokens=2048", "eval.tasks=[distill_arith]",
          "report.bootstrap=50",
          "experts={kind: simulated, drafts: 50}",
          "verifier={samples: 4, prompts: 20, steps: 20, batch_size: 8, held_out: 0.2}"]


def test_verifier_reranks_a_students_samples_and_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    overrides = [f"output_dir={tmp_path}", *VERIFY]
    steps = plan(load_recipe(TINY, overrides))
    step = next(s for s in steps if s.kind == "verifier")
    by_id = {s.id: s for s in steps}
    assert [by_id[d].kind for d in step.deps] == ["expert", "train"] and step.labels["n"] == 100
    assert by_id[step.deps[0]].config["primitive"] == "first_error"  # made for the verifier, no arm uses it
    assert step.id in next(s for s in steps if s.kind == "report").deps

    assert main(["run", TINY, *overrides]) == 0
    result = json.loads((tmp_path / "tiny" / "steps" / step.id / "verifier.json").read_text())
    assert result["marks_trained"] == 40 and result["localisation"]["drafts"] == 10
    assert set(result["accuracy"]) == {"first", "majority", "prm_min", "prm_product", "outcome_min",
                                       "outcome_product", "oracle"}
    assert all(len(v) == 20 for v in result["items"].values())
    # pass@n bounds every pick
    assert all(result["accuracy"]["oracle"] >= a for a in result["accuracy"].values())
    report = next((tmp_path / "tiny" / "steps").glob("report-*"))
    assert "## Step marks as a verifier: best-of-n" in (report / "report.md").read_text()
    assert json.loads((report / "report.json").read_text())["verifier"]["differences"]
