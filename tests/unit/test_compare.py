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


def _seed_set(root, name, scores_by_cell, n_items=200, seed=0):
    rng = np.random.default_rng(seed)
    runs = []
    for (arm, n), scores in scores_by_cell.items():
        for s, p in enumerate(scores):
            items = rng.binomial(1, p, n_items)
            runs.append({"arm": arm, "fraction": 0.0, "n": n, "seed": s, "score": float(items.mean()),
                         "items": items.tolist()})
    folder = root / name / "steps" / "report-x"
    folder.mkdir(parents=True)
    (folder / "records.json").write_text(json.dumps({"name": name, "runs": runs}))
    return root / name, runs


def test_coverage_checks_each_runs_cell_intervals_against_the_other(tmp_path, capsys):
    """`distill coverage A B`: a cell whose two seed sets agree is held both ways; one far off is not."""
    from evals.analysis.cells import cell_interval

    a, runs_a = _seed_set(tmp_path, "a", {("human", 125): [0.30, 0.34], ("human", 500): [0.80, 0.82]}, seed=1)
    b, runs_b = _seed_set(tmp_path, "b", {("human", 125): [0.31, 0.33], ("human", 500): [0.20, 0.22]}, seed=2)
    assert main(["coverage", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    cell = [r for r in runs_a if r["n"] == 500]
    _, lo, hi = cell_interval([r["score"] for r in cell], [r["items"] for r in cell], 0.9)
    b_mean = np.mean([r["score"] for r in runs_b if r["n"] == 500])
    assert not lo <= b_mean <= hi  # the planted disagreement is real
    row = next(line for line in out.splitlines() if line.startswith("human:500"))
    assert row.split()[-2:] == ["NO", "NO"]
    assert (next(line for line in out.splitlines() if line.startswith("human:125")).split()[-2:]
            == ["yes", "yes"])
    assert "in 1 of 2 cells" in out and "2 of 4 (50%)" in out


def test_coverage_refuses_runs_with_no_common_cell(tmp_path, capsys):
    a, _ = _seed_set(tmp_path, "a", {("human", 125): [0.3, 0.3]})
    b, _ = _seed_set(tmp_path, "b", {("synthetic", 125): [0.3, 0.3]})
    assert main(["coverage", str(a), str(b)]) == EXIT_BAD_INPUT
    assert "no (arm, N) cell was measured in both runs" in capsys.readouterr().err
