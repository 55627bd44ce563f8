"""The data-wall report from simulated sweep records: PNGs, report.md/html/json, loader, W&B logging.

Run: pytest tests/smoke/test_report.py -q   (~15 s; matplotlib Agg, W&B offline)
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from distill.recipe.schema import Report, Wandb
from distill.tracking import read_offline_run, start_tracker
from evals.report.sweep import SWEEP_FILE, load_sweep, write_report

pytestmark = pytest.mark.smoke

# arm -> (synthetic fraction, y_inf, amplitude, alpha): score = y_inf - amplitude * (N / 250) ** -alpha
CURVES = {"human": (0.0, 0.95, 0.9, 0.45), "hybrid": (0.5, 0.90, 0.9, 0.55),
          "synthetic": (1.0, 0.74, 0.8, 0.7)}
PNG = b"\x89PNG\r\n\x1a\n"


def simulate_sweep(seed: int = 0, items: int = 200, human_pool: int = 2000,
                   sizes=(250, 500, 1000, 2000, 4000, 8000), seeds=(0, 1, 2)) -> dict:
    """Run records as the DAG writes them; runs needing more human data than the pool are infeasible."""
    rng = np.random.default_rng(seed)
    runs = []
    for arm, (f, y_inf, amp, alpha) in CURVES.items():
        for n in sizes:
            for s in seeds:
                human = round(n * (1 - f))
                if human > human_pool:
                    runs.append({"arm": arm, "fraction": f, "n": n, "seed": s, "score": None,
                                 "feasible": False})
                    continue
                p = float(np.clip(y_inf - amp * (n / 250) ** -alpha + rng.normal(0, 0.02), 0.01, 0.99))
                correct = (rng.random(items) < p).astype(int).tolist()
                runs.append({"arm": arm, "fraction": f, "n": n, "seed": s, "score": float(np.mean(correct)),
                             "items": correct, "feasible": True,
                             "cost": {"human": human, "teacher_s": 0.02 * n * f, "train_s": 0.01 * n,
                                      "eval_s": 5}})
    teacher = (rng.random(items) < 0.77).astype(int).tolist()
    return {"name": "simulated", "unit": "examples", "human_pool": human_pool,
            "ceiling": {"score": float(np.mean(teacher)), "items": teacher},
            "floor": {"score": 0.0, "items": [0] * items}, "runs": runs}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report(simulate_sweep(), out, Report(bootstrap=300))


def test_files_and_contents(report):
    out, res = report
    for name in ("curves", "heatmap", "frontier"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000, name
    md = (out / "report.md").read_text()
    assert res["verdict"] and res["verdict"] in md
    for arm in CURVES:
        assert f"| {arm} |" in md, arm  # a row in the fits table
    assert "![score vs N per arm](curves.png)" in md and "Infeasible (wall policy stop" in md
    assert "human: N=4k, 8k; hybrid: N=8k" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page
    assert json.loads((out / "report.json").read_text())["verdict"] == res["verdict"]


def test_numbers_follow_the_data(report):
    _, res = report
    fits = {row["arm"]: row for row in res["fits"]}
    assert set(fits) == set(CURVES)
    assert fits["human"]["n_max"] == 2000 and fits["hybrid"]["n_max"] == 4000  # stopped at the wall
    assert fits["synthetic"]["runs"] == 18 and fits["human"]["runs"] == 12
    syn = fits["synthetic"]["y_inf"]
    assert syn["lower"] <= 0.74 <= syn["upper"]  # the simulated asymptote lies in its interval
    assert syn["lower"] < syn["estimate"] < syn["upper"]
    assert ({(r["arm"], r["n"]) for r in res["infeasible"]}
            == {("human", 4000), ("human", 8000), ("hybrid", 8000)})
    assert res["settings"]["resampled_over"] == ["seeds", "items"]
    assert res["pareto"][0]["arm"] == "synthetic"  # no human examples to pay for: the cheapest mixes
    assert [b["n"] for b in res["best_per_n"]] == [250, 500, 1000, 2000, 4000, 8000]


def test_loader_paths_give_the_same_report(tmp_path):
    sweep = simulate_sweep(seed=1, sizes=(250, 500, 1000, 2000), seeds=(0, 1))
    (tmp_path / SWEEP_FILE).write_text(json.dumps(sweep))
    assert load_sweep(tmp_path).runs == load_sweep(tmp_path / SWEEP_FILE).runs
    assert load_sweep(tmp_path).dumped()["runs"] == sweep["runs"]  # read back as written
    a = write_report(tmp_path, tmp_path / "a", Report(bootstrap=100), html_page=False)
    b = write_report(sweep, tmp_path / "b", Report(bootstrap=100), html_page=False)
    assert a["verdict"] == b["verdict"] and a["inputs"] == b["inputs"]
    assert not (tmp_path / "a" / "report.html").exists()


def test_bad_records_name_the_problem(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"name": "x", "runs": []}))
    with pytest.raises(ValueError, match="r.json.*runs"):
        load_sweep(tmp_path / "r.json")
    with pytest.raises(ValueError, match="unknown keys \\['human_pol'\\]"):
        write_report({"runs": [{"arm": "a", "n": 1, "score": 0.5}], "human_pol": 3}, tmp_path)
    with pytest.raises(ValueError, match="unit"):
        write_report({"runs": [{"arm": "a", "n": 1, "score": 0.5}], "unit": "bytes"}, tmp_path)
    with pytest.raises(ValueError, match="no feasible run"):
        write_report({"runs": [{"arm": "a", "n": 1, "score": None, "feasible": False}]}, tmp_path)


def test_report_logs_to_wandb_offline(tmp_path):
    tracker = start_tracker(Wandb(project="distill-test"), sweep="simulated", stage="report",
                            step_id="report-0",
                            config={"report": Report().model_dump()}, dir=tmp_path / "wb")
    res = write_report(simulate_sweep(sizes=(250, 500, 1000, 2000), seeds=(0, 1)), tmp_path / "out",
                       Report(bootstrap=100), tracker=tracker)
    tracker.finish()
    back = read_offline_run(tracker.run_dir)
    assert back["summary"]["verdict"] == res["verdict"]
    table = back["tables"]["fits"]
    assert [row[0] for row in table["data"]] == list(CURVES)
    col = table["columns"].index("y_inf_estimate")
    assert [row[col] for row in table["data"]] == pytest.approx([r["y_inf"]["estimate"] for r in res["fits"]])
    assert {"report/curves", "report/heatmap", "report/frontier"} <= set(back["summary"])
