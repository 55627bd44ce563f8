"""A run folder belongs to one experiment (issue 20, class 4): a second recipe with the same name and
output_dir is refused in one line, exit 2, nothing written, unless it only extends the folder's
experiment (more seeds or sizes, a convergence check, another launcher) or changes nothing finished.
No step runs here: the folder is planned, and finished steps are marked by hand.
Run: pytest tests/unit/test_run_folder.py -q"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.artifacts import mark_done
from distill.cli import main
from distill.pipeline.ownership import check_same_experiment
from distill.pipeline.run import planned, prepare_run
from distill.pipeline.state import DAG_FILE, RECIPE_FILE
from distill.recipe import RecipeError
from tests.pipeline_helpers import ROOT, SMALL, later_wins, tiny_recipe

pytestmark = pytest.mark.unit
TINY = str(ROOT / "recipes/tiny.yaml")


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    """The tiny recipe's run folder with its tokenizer, human step and every seed-1 training finished."""
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    run_dir, steps, cache = prepare_run(tiny_recipe(tmp_path / "runs"))
    for step in steps:
        if step.kind in ("tokenizer", "human") or (step.kind == "train" and step.labels.get("seed") == 1):
            step.folder(run_dir, cache).mkdir(parents=True)
            mark_done(step.folder(run_dir, cache))
    return run_dir


def _files(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in (RECIPE_FILE, DAG_FILE)}


def _cli(run_dir: Path, *overrides: str, dry_run: bool = False) -> list[str]:
    """`distill run` of the recipe ``tiny_recipe`` planned the folder from, plus ``overrides``."""
    return ["run", TINY, f"output_dir={run_dir.parent}", *later_wins(SMALL, list(overrides)),
            *(["--dry-run"] if dry_run else [])]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("override, differs", [
    ("train.lr=0.002", "train.lr: 0.003 there, 0.002 here"),
    ("world.human_pool=80", "world.human_pool: 100 there, 80 here"),
    ("mixes.seeds=[0]", "mixes.seeds: [0, 1] there, [0] here"),  # narrowing drops finished seed-1 runs
    ("train.tokens=8192", "train.tokens: 16384 there, 8192 here"),
])
def test_another_experiment_in_the_same_folder_is_refused_and_nothing_is_written(
        folder, override, differs, dry_run, capsys):
    before = _files(folder)
    assert main(_cli(folder, override, dry_run=dry_run)) == 2
    line = _one_error(capsys)
    assert f"{folder} holds another experiment ({differs}" in line, line
    assert "name=tiny-2" in line and "finished steps" in line
    assert _files(folder) == before, "the first experiment's recipe.yaml or dag.json was rewritten"


@pytest.mark.parametrize("overrides", [
    ["report.convergence.factor=2"],  # the README's convergence check on the demo's folder
    ["mixes.seeds=[0, 1, 2]"],  # extends: every finished step stays in the plan
    ["mixes.sizes=[50, 100, 200, 400]"],
    ["launcher.workers=1", "report.bootstrap=80"],  # where and how it runs, and the analysis
    ["description=another sentence"],
])
def test_an_extension_or_a_new_analysis_reuses_the_folder(folder, overrides, capsys):
    assert main(_cli(folder, *overrides, dry_run=True)) == 0, capsys.readouterr().err
    recipe = tiny_recipe(folder.parent, *overrides)
    check_same_experiment(folder, recipe, planned(recipe))  # no error


def test_the_convergence_check_and_back_keep_one_folder(folder, monkeypatch):
    with_check = tiny_recipe(folder.parent, "report.convergence.factor=2")
    prepare_run(with_check)
    assert "convergence" in (folder / RECIPE_FILE).read_text()
    plain = tiny_recipe(folder.parent)
    prepare_run(plain)  # dropping the check's steps is a report knob, not another experiment
    assert json.loads((folder / DAG_FILE).read_text())["steps"] == [s.to_dict() for s in planned(plain)]


def test_a_folder_whose_steps_never_finished_takes_a_corrected_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    prepare_run(tiny_recipe(tmp_path))  # e.g. the first try stopped on bad data before any step finished
    fixed = tiny_recipe(tmp_path, "train.lr=0.002")
    run_dir, _, _ = prepare_run(fixed)
    assert "lr: 0.002" in (run_dir / RECIPE_FILE).read_text()


def test_a_folder_without_its_recipe_is_judged_by_its_finished_steps(folder, capsys):
    (folder / RECIPE_FILE).unlink()
    assert main(_cli(folder, "train.lr=0.002", dry_run=True)) == 2
    assert "its recipe.yaml is missing or unreadable" in _one_error(capsys)
    assert main(_cli(folder, "mixes.seeds=[0, 1, 3]", dry_run=True)) == 0


def test_a_copied_recipe_file_keeping_the_name_is_refused(folder, tmp_path, capsys):
    copy = tmp_path / "mine.yaml"  # the example: another recipe that kept `name: tiny`
    copy.write_text(Path(TINY).read_text().replace("{hidden_size: 32,", "{hidden_size: 16,"))
    before = _files(folder)
    argv = _cli(folder)
    argv[1] = str(copy)
    assert main(argv) == 2
    assert "student.arch.hidden_size: 32 there, 16 here" in _one_error(capsys)
    assert _files(folder) == before
    main(["status", str(folder)])  # status still describes the first experiment: its 8 finished steps
    assert "done=8 " in capsys.readouterr().out


def test_a_key_a_newer_distill_added_is_not_another_experiment(tmp_path, monkeypatch):
    """A folder written before a key existed (its recipe.yaml lacks it) whose step ids the newer
    distill plans differently: the same recipe, re-measured in place, not another experiment."""
    from distill.recipe import resolved_yaml

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    old_code = tiny_recipe(tmp_path, "world.val_size=400")  # stands in for ids an older distill planned
    run_dir, steps, cache = prepare_run(old_code)
    for step in steps:
        if step.kind == "train":
            step.folder(run_dir, cache).mkdir(parents=True)
            mark_done(step.folder(run_dir, cache))
    recipe = tiny_recipe(tmp_path)
    text = resolved_yaml(recipe)
    assert "  val_size: 500\n" in text
    (run_dir / RECIPE_FILE).write_text(text.replace("  val_size: 500\n", "", 1))
    check_same_experiment(run_dir, recipe, planned(recipe))  # no error
    (run_dir / RECIPE_FILE).write_text(text.replace("  val_size: 500\n", "  val_size: 400\n", 1))
    with pytest.raises(RecipeError, match=r"world.val_size: 400 there, 500 here"):
        check_same_experiment(run_dir, recipe, planned(recipe))
