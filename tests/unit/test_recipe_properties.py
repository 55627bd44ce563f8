"""Property tests: any mutation of a shipped recipe, in the file or as a command-line override, either
validates or fails with exit 2 and exactly one line naming the recipe; never a traceback.
Run: pytest tests/unit/test_recipe_properties.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill.cli import main

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
BASES = [ROOT / "recipes/tiny.yaml", ROOT / "recipes/demo.yaml"]
SKIP = {"tasks"}  # a random task name makes lm-eval index its whole registry (slow); tested elsewhere

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12),
                    st.sampled_from(["", "..", "/", "a/b", "~", "-1", "1e-3", "[", "{"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner,
                                                                       max_size=3)),
                      max_leaves=6)


def _paths(tree, prefix=()) -> list[tuple]:
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k in SKIP:
                continue
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _set(tree, path, value, delete: bool):
    node = tree
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def _check(code: int, err: str, recipe: Path) -> None:
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
        assert str(recipe) in lines[0] or "override" in lines[0], lines[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_recipe_files_validate_or_fail_in_one_line(data, tmp_path, capsys):
    base = data.draw(st.sampled_from(BASES))
    tree = yaml.safe_load(base.read_text())
    path = data.draw(st.sampled_from(_paths(tree)))
    _set(tree, path, data.draw(values), delete=data.draw(st.booleans()))
    recipe = tmp_path / "mutated.yaml"
    recipe.write_text(yaml.safe_dump({**tree, "output_dir": str(tmp_path / "runs")}, allow_unicode=True))
    code = main(["validate", str(recipe)])
    _check(code, capsys.readouterr().err, recipe)
    assert not (tmp_path / "runs").exists()


keys = st.lists(st.sampled_from(["world", "mixes", "train", "eval", "generation", "arms", "0", "9", "sizes",
                                 "lr", "seed", "kind", "human_pool", "x", "teacher", "model", "build"]),
                min_size=1, max_size=4).map(".".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, raw=st.one_of(st.text(max_size=15), values.map(lambda v: yaml.safe_dump(v).strip())))
def test_random_overrides_validate_or_fail_in_one_line(key, raw, tmp_path, capsys):
    if key.split(".")[-1] in SKIP:
        return
    recipe = BASES[0]
    code = main(["validate", str(recipe), f"output_dir={tmp_path / 'runs'}", f"{key}={raw}"])
    _check(code, capsys.readouterr().err, recipe)
    assert not (tmp_path / "runs").exists()
