"""The report's human-effort section from sweep records with expert time: plot, tables, verdict, JSON.
Run: pytest tests/smoke/test_effort_report.py -q"""
from __future__ import annotations

import json

import pytest

from distill.recipe.schema import Costs, Report
from evals.report.sweep import write_report
from tests.unit.test_effort import MEANS, _records

pytestmark = pytest.mark.smoke


def test_report_has_a_human_effort_section(tmp_path):
    sweep = {"name": "effort", "runs": _records(MEANS), "ceiling": 0.8, "floor": 0.0, "human_pool": 400,
             "meta": {"arms": {"human": {"human": "human", "fraction": 0.0},
                               "edited": {"human": "edited", "fraction": 0.0},
                               "picked": {"human": "picked", "fraction": 0.0},
                               "synthetic": {"human": "human", "fraction": 1.0}},
                      "experts": {"edited": {"expert": "simulated", "simulated": True}}}}
    out = write_report(sweep, tmp_path, Report(bootstrap=200, costs=Costs(expert_hour=60)), html_page=False)
    text = (tmp_path / "report.md").read_text()
    assert "## Human effort: score per expert hour" in text and "![score vs expert hours](effort.png)" in text
    assert (tmp_path / "effort.png").read_bytes()[:4] == b"\x89PNG"
    assert "SIMULATED expert" in text and "60 USD" in text
    effort = json.loads((tmp_path / "report.json").read_text())["effort"]
    assert effort["verdict"] == out["effort"]["verdict"] and effort["budgets"] and effort["gains"]
    assert {p["arm"] for p in effort["points"]} == set(MEANS)


def test_report_without_expert_time_has_no_such_section(tmp_path):
    runs = [{**r, "cost": {}} for r in _records(MEANS)]
    write_report({"name": "plain", "runs": runs}, tmp_path, Report(bootstrap=50), html_page=False)
    assert "Human effort" not in (tmp_path / "report.md").read_text()
