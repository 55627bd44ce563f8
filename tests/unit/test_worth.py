"""'Is more worth it?' (evals.report.worth_report): gain per dollar of more teacher vs more human data.

Run: .venv/bin/python -m pytest tests/unit/test_worth.py -q
"""
import numpy as np
import pytest

from distill.recipe.schema import Costs
from evals.analysis.uncertainty import analyze
from evals.report import forecast_report
from tests.unit.test_backtest import _sweep

pytestmark = pytest.mark.unit


def _priced(runs, teacher_s_per_example):
    for r in runs:
        synthetic = r["fraction"] > 0
        r["cost"] = {"teacher_s": teacher_s_per_example * r["n"] if synthetic else 0.0,
                     "human": 0.0 if synthetic else float(r["n"])}
    return runs


def test_prices_follow_measured_throughput_and_the_verdict_names_an_arm_only_when_intervals_separate():
    costs = Costs(currency="USD", human_per_example=0.5, device_hour=2.0)
    result = analyze(_priced(_sweep(np.random.default_rng(0)), 0.36), n_boot=200)
    _, summary = forecast_report.section(result, 0.9, costs)
    rows = {(r["arm"], r["factor"]): r for r in summary["worth"]["rows"]}
    assert rows[("synthetic", 2)]["price"] == pytest.approx(4000 * 0.36 * 2.0 / 3600)
    assert rows[("human", 10)]["price"] == pytest.approx(36000 * 0.5)
    for text in summary["worth"]["verdicts"]:
        assert ("goes to" in text) != ("cannot tell" in text)
    syn, hum = rows[("synthetic", 2)], rows[("human", 2)]
    separated = syn["per_dollar"][1] > hum["per_dollar"][2]
    assert ("goes to synthetic" in summary["worth"]["verdicts"][0]) == (separated and syn["forecastable"]
                                                                       and hum["forecastable"])
