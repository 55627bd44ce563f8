"""Teachers and generations on the local executor at toy size: both reports come out, and adding a
generation reruns only the new steps. Plumbing, not science (these students learn little).
Run: pytest tests/smoke/test_axes.py -q"""
from __future__ import annotations

import json

import pytest

from distill.pipeline.run import run_recipe
from distill.recipe.loading import read_yaml, validate_tree
from tests.pipeline_helpers import ROOT, done_markers

pytestmark = pytest.mark.smoke


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tiny(out, **changes):
    tree = read_yaml(ROOT / "recipes/tiny.yaml")
    tree.update(output_dir=str(out), eval={**tree["eval"], "tasks": ["distill_arith"]},
                report={"bootstrap": 50})
    for key, value in changes.items():
        if value is None:
            tree.pop(key, None)
        else:
            tree[key] = value
    return validate_tree(tree, "tiny")


def test_generations_report_and_adding_a_generation_reruns_only_new_steps(tmp_path, cache):
    gens = {"count": 1, "seeds": [0, 1], "prompts": 60, "policies": ["replace", "accumulate"]}
    recipe = _tiny(tmp_path, mixes=None, teacher=None, generations=gens)
    assert run_recipe(recipe) == 0
    run_dir = tmp_path / recipe.name
    first = done_markers(run_dir, cache)
    report = json.loads(next(run_dir.glob("steps/report-*/report.json")).read_text())
    assert set(report["policies"]) == {"replace", "accumulate"}
    assert report["policies"]["replace"]["generations"] == [0, 1]

    assert run_recipe(_tiny(tmp_path, mixes=None, teacher=None, generations={**gens, "count": 2})) == 0
    after = done_markers(run_dir, cache)
    assert all(after[sid] == first[sid]
               for sid in first if not sid.startswith("report-")), "an old step was redone"
    new = sorted(sid.split("-")[0] for sid in set(after) - set(first))
    # per seed and policy: one generate shard pair, one merge, one student, one evaluation; one new report
    assert new == sorted(["generate"] * 8 + ["merge"] * 4 + ["train"] * 4 + ["eval"] * 4 + ["report"])


def test_teachers_share_the_human_arm_and_compare_side_by_side(tmp_path, cache):
    tree = read_yaml(ROOT / "recipes/tiny.yaml")
    build = tree["teacher"]["build"]
    teachers = [{"name": "weak", "build": {**build, "max_steps": 20}}, {"name": "strong", "build": build}]
    recipe = _tiny(tmp_path, teacher=None, teachers=teachers,
                   mixes={**tree["mixes"], "seeds": [0, 1], "sizes": [50, 100, 200]})
    assert run_recipe(recipe) == 0
    run_dir = tmp_path / recipe.name
    compare = next(p
                   for p in run_dir.glob("steps/report-*/report.json")
                   if "teachers" in json.loads(p.read_text()))
    rows = json.loads(compare.read_text())["teachers"]
    assert [r["name"] for r in rows] == ["weak", "strong"]
    assert rows[0]["human_y_inf"] == rows[1]["human_y_inf"], "the human arm is one set of runs"
    trains = list(run_dir.glob("steps/train-*"))
    assert len(trains) == 3 * 2 + 2 * (2 * 3 * 2), "human arm once, synthetic and hybrid per teacher"

    from distill.pipeline.run import rerun_report

    before = compare.stat().st_mtime_ns
    assert rerun_report(run_dir) == 0
    assert compare.stat().st_mtime_ns > before, "`distill report` rewrites the comparison too"


def test_an_accumulating_lineage_deduplicates_against_the_human_pool_and_earlier_generations(tmp_path, cache):
    gens = {"count": 2, "seeds": [0], "prompts": 60, "policies": ["accumulate"]}
    tree = read_yaml(ROOT / "recipes/tiny.yaml")
    generation = {**tree["generation"], "filters": {"dedup_against_human": True}}
    recipe = _tiny(tmp_path, mixes=None, teacher=None, generations=gens, generation=generation)
    assert run_recipe(recipe) == 0
    run_dir = tmp_path / recipe.name
    reports = [(json.loads((m / "report.json").read_text())["filters"]["references"], m)
               for m in run_dir.glob("steps/merge-*")]
    # generation 1 against the human pool; generation 2 against it and generation 1's data
    assert sorted(r["sources"] for r, _ in reports) == [1, 2]
    refs = {r["sources"]: r for r, _ in reports}
    merges = {r["sources"]: m for r, m in reports}
    pairs = {k: _pairs(m / "synthetic") for k, m in merges.items()}
    (human,) = run_dir.glob("steps/human-*")
    pool = _pairs(human / "source")
    assert refs[2]["rows"] == len(pool) + len(pairs[1])
    assert not pairs[2] & (pool | pairs[1]) and not pairs[1] & pool


def _pairs(source) -> set[tuple[str, str]]:
    from distill.sources import load_source

    return {(r["prompt"], r["completion"]) for r in load_source(source)}
