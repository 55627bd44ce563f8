"""Every recipe key is documented where users look: a description on each schema field, printed with its
type, default and allowed values by ``distill validate --explain KEY``.
Run: pytest tests/unit/test_explain.py -q"""
from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from distill.cli import main
from distill.recipe.schema import Recipe

pytestmark = pytest.mark.unit


def _reachable(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """Every model a recipe reaches, through nested sections, lists, dicts, Optional and unions."""
    if model.__name__ in seen:
        return seen
    seen[model.__name__] = model
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                _reachable(t, seen)
            stack.extend(typing.get_args(t))
    return seen


def test_every_recipe_field_has_a_description():
    models = _reachable(Recipe, {})
    assert {"Recipe", "Train", "Arm", "ArithmeticWorld", "DatasetWorld", "ReasoningGymWorld", "DataRef",
            "Resources", "ExpertTimes", "PreferenceStep"} <= set(models)
    bare = [f"{m.__name__}.{name}" for m in models.values() for name, field in m.model_fields.items()
            if not (field.description or "").strip()]
    assert not bare, f"fields without a description (a docstring under the field): {bare}"


def _explain(key: str, capsys) -> str:
    assert main(["validate", "--explain", key]) == 0
    return capsys.readouterr().out


def test_a_bounded_float(capsys):
    out = _explain("train.lr", capsys)
    assert out.splitlines()[0] == "train.lr"
    assert "Peak learning rate" in out and "float > 0" in out and "default: 0.003" in out


def test_a_literal_and_an_optional_bound(capsys):
    out = _explain("train.schedule", capsys)
    assert "default: \"cosine\"" in out and "allowed: cosine, linear, constant" in out
    out = _explain("generation.filters.near_dedup_threshold", capsys)
    assert "MinHash" in out and "float in (0.0, 1.0] | null" in out and "default: 0.9" in out


def test_registry_names_and_a_section_default(capsys):
    assert "allowed: hf, vllm, openai" in _explain("generation.backend", capsys)
    assert "allowed: gsm8k, metamath" in _explain("world.adapter", capsys)
    # the teacher's build has its own arch: the default where the key leads, not Arch's
    assert "default: 128" in _explain("teacher.build.arch.hidden_size", capsys)


def test_a_section_lists_its_fields(capsys):
    out = _explain("mixes.arms", capsys)
    assert "list of Arm (at least 1)" in out
    for name in ("name", "fraction", "human", "objective", "allocator"):
        assert f"    {name}: " in out
    assert "    fraction: float in [0.0, 1.0]  — Synthetic fraction" in out


def test_a_union_of_world_kinds_answers_per_kind(capsys):
    out = _explain("world", capsys)
    for kind, field in (("arithmetic", "max_digits"), ("dataset", "adapter"), ("reasoning_gym", "dataset")):
        assert f"fields of kind: {kind}" in out and f"    {field}: " in out
    out = _explain("world.test_size", capsys)
    assert out.count("world.test_size   (kind: ") == 3 and "null: the whole test split" in out


def test_an_unknown_key_is_one_line_with_a_suggestion(capsys):
    assert main(["validate", "--explain", "train.lrr"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'train.lrr'" in err and "did you mean 'lr'?" in err


def test_validate_still_needs_a_recipe_without_explain(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2 and "required: recipe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["validate", "demo", "--explain", "train.lr"])
