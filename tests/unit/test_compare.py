"""`distill compare RUN_DIR MODEL_A MODEL_B`: two evaluations of a run's report records, item by item.

Run: .venv/bin/python -m pytest tests/unit/test_compare.py -q
"""
import json

import numpy as np
import pytest
from scipy import stats

from distill.cli import EXIT_BAD_INPUT, main

pytestmark = pytest.mark.unit


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(0)
    teacher = rng.binomial(1, 0.8, 300)
    human = np.where(rng.random(300) < 0.7, teacher, 0)
    runs = [{"arm": "human", "fraction": 0.0, "n": 500, "seed": s, "score": float(human.mean()),
             "items": human.tolist()} for s in (1, 0)]
    folder = tmp_path / "runs" / "x" / "steps" / "report-abc"
    folder.mkdir(parents=True)
    (folder / "records.json").write_text(json.dumps({"name": "x", "runs": runs, "floor": 0.0,
                                                     "ceiling": {"score": float(teacher.mean()),
                                                                 "items": teacher.tolist()}}))
    return tmp_path / "runs" / "x", teacher, human


def test_compare_prints_mcnemar_bootstrap_and_mdd(run_dir, capsys):
    folder, teacher, human = run_dir
    assert main(["compare", str(folder), "teacher", "human:500"]) == 0
    out = capsys.readouterr().out
    a_only = int(np.sum((teacher == 1) & (human == 0)))
    assert f"{a_only} items only A gets right, 0 only B" in out
    assert f"p = {stats.binomtest(a_only, a_only, 0.5).pvalue:.3g}" in out
    assert "B = human:500:0" in out and "outside noise" in out and "minimum detectable difference" in out


@pytest.mark.parametrize("spec", ["human:999", "human", "floor"])
def test_compare_names_a_model_it_cannot_find(run_dir, capsys, spec):
    assert main(["compare", str(run_dir[0]), "teacher", spec]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: model") and spec in err and len(err.strip().splitlines()) == 1
