"""Recipe schema, overrides and errors. Run: pytest tests/unit/test_recipes.py -q"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from distill.cli import main, shipped_recipes
from distill.recipe import RecipeError, load_recipe, resolved_yaml, validate_tree

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((ROOT / "tests/fixtures/bad_recipes").glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, str]:
    lines = path.read_text().splitlines()
    return lines[0].removeprefix("# key: ").strip(), lines[1].removeprefix("# value: ").strip()


def test_there_are_enough_malformed_fixtures():
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_malformed_recipe_exits_2_naming_key_and_value(path, capsys):
    key, value = _expectation(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and key in err and value in err, err


def test_validate_subprocess_exit_code():
    bad = ROOT / "tests/fixtures/bad_recipes/fraction_above_one.yaml"
    out = subprocess.run([sys.executable, "-m", "distill.cli", "validate", str(bad)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "mixes.arms.1.fraction" in out.stderr and out.stdout == ""


def test_every_shipped_recipe_validates():
    recipes = shipped_recipes()
    assert recipes, "found no recipes under recipes/"
    for path in recipes:
        load_recipe(path)


def test_overrides_apply_and_are_typed():
    recipe = load_recipe(ROOT / "recipes/demo.yaml",
                         ["mixes.sizes=[10,20]", "train.lr=0.5", "mixes.arms.0.fraction=0.25"])
    assert recipe.mixes.sizes == [10, 20]
    assert recipe.train.lr == 0.5
    assert recipe.mixes.arms[0].fraction == 0.25


@pytest.mark.parametrize("override, fragment", [
    ("mixes.sizes", "expected key.sub=value"),
    ("mixes.arms.9.fraction=0.1", "out of range"),
    ("train.lrr=0.1", "did you mean 'lr'"),
])
def test_bad_overrides_are_named(override, fragment):
    with pytest.raises(RecipeError, match=fragment):
        load_recipe(ROOT / "recipes/demo.yaml", [override])


def test_resolved_recipe_round_trips():
    import yaml

    recipe = load_recipe(ROOT / "recipes/demo.yaml")
    again = validate_tree(yaml.safe_load(resolved_yaml(recipe)), "resolved")
    assert again == recipe


def test_ls_lists_demo(capsys):
    assert main(["ls"]) == 0
    assert "demo" in capsys.readouterr().out
