"""Every step kind is one complete record (distill/pipeline/kinds.py): every kind a shipped recipe plans
has one, and each record's stage, runner and Slurm section exist. Run: pytest tests/unit/test_kinds.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.pipeline.kinds import KINDS, SLURM_SECTIONS, STAGES, UNTIL, kind_of, slurm_section
from distill.pipeline.plan import plan
from distill.recipe import load_recipe
from distill.recipe.schema import ArithmeticWorld, DatasetWorld, ReasoningGymWorld, Slurm

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted(p
                 for p in (ROOT / "recipes").rglob("*.yaml") if "accelerate" not in p.relative_to(ROOT).parts)


def test_every_planned_kind_has_a_record():
    planned = {s.kind for path in RECIPES for s in plan(load_recipe(path))}
    assert planned - set(KINDS) == set()
    # the recipes reach far
    assert {"tokenizer", "generate", "train", "eval", "report", "expert", "teacher"} <= planned


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_record_is_complete(name):
    kind = KINDS[name]
    assert kind.name == name and kind.stage in STAGES and kind.slurm in SLURM_SECTIONS
    assert callable(kind.run_function())
    assert kind.slurm in Slurm.model_fields
    worlds = {"arithmetic": ArithmeticWorld, "dataset": DatasetWorld, "reasoning_gym": ReasoningGymWorld}
    for world, unread in kind.world_unread.items():  # fields the kind's id ignores must exist
        assert unread <= set(worlds[world].model_fields) - {"kind"}, (name, world)


def test_words_agree():
    assert set(SLURM_SECTIONS) == set(Slurm.model_fields) - {"array_parallelism"}
    assert set(UNTIL) < set(STAGES) and {k.stage for k in KINDS.values()} == set(STAGES)
    assert slurm_section("eval", True) == "ceiling" and slurm_section("eval") == "eval"


def test_an_unknown_kind_is_an_error_not_a_default():
    with pytest.raises(ValueError, match="unknown step kind 'distil'"):
        kind_of("distil")


def test_every_planned_config_is_its_typed_slice():
    """A step's stored config is exactly its typed slice's dump (so typing the slices changed no id)."""
    for path in RECIPES:
        for step in plan(load_recipe(path)):
            config = KINDS[step.kind].config.model_validate(step.config)
            assert config.model_dump(mode="json", exclude_unset=True) == step.config, (path.name, step.kind)


def test_a_config_with_an_unknown_key_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        kind_of("student").config.model_validate({"student": {}, "seed": 0, "sed": 1})
