"""The verifier section of the report says where each scorer's first-error localisation stands against
always saying "no mark", with a paired interval over the held-out drafts.
Run: pytest tests/unit/test_verifier_report.py -q"""
from __future__ import annotations

import pytest

from evals.report.verifier_report import section

pytestmark = pytest.mark.unit


def _verifier(prm: list[int], outcome: list[int], baseline: list[int], items: bool = True) -> dict:
    loc = {"drafts": len(baseline), "prm": sum(prm) / len(prm), "outcome": sum(outcome) / len(outcome),
           "no_mark_baseline": sum(baseline) / len(baseline)}
    if items:
        loc["items"] = {"prm": prm, "outcome": outcome, "no_mark_baseline": baseline}
    right = [1, 0] * 10
    return {"accuracy": {}, "feasible": True, "samples": 4, "prompts": 20, "arm": "a", "n": 10,
            "marks_trained": 8,
            "marks_human_s": 96.0, "after_mark": "drop", "init": "teacher", "localisation": loc,
            "items": {m: right for m in ("first", "majority", "prm_min", "prm_product", "outcome_min",
                                         "outcome_product", "oracle")}}


def _text(blocks) -> str:
    return " ".join(b[1] for b in blocks if b[0] == "p")


def test_a_scorer_below_always_no_mark_is_called_below_it():
    baseline = [1] * 80 + [0] * 20  # 80% of the held-out drafts have no mark
    prm = [0] * 40 + [1] * 40 + [1] * 20  # false marks on half the clean drafts, every marked draft found
    blocks, summary = section(_verifier(prm, baseline, baseline), 0.9)
    said = summary["localisation_vs_no_mark"]
    assert said["prm"]["verdict"] == "below" and said["prm"]["estimate"] == pytest.approx(-0.2)
    assert said["outcome"]["verdict"] == "within noise of" and said["outcome"]["estimate"] == 0.0
    assert "PRM -20.0 [" in _text(blocks) and "below it" in _text(blocks)
    assert "items" not in summary["localisation"]


def test_a_scorer_that_finds_the_marks_is_above_it():
    baseline = [1] * 50 + [0] * 50
    _, summary = section(_verifier([1] * 100, baseline, baseline), 0.9)
    assert summary["localisation_vs_no_mark"]["prm"]["verdict"] == "above"


def test_without_per_draft_items_it_compares_the_point_estimates_only():
    baseline = [1] * 8 + [0] * 2
    blocks, summary = section(_verifier([1] * 5 + [0] * 5, baseline, baseline, items=False), 0.9)
    assert "PRM below it (no per-draft items" in _text(blocks) and "localisation_vs_no_mark" not in summary
