"""Every vocabulary is one registry (distill/registry.py): each entry's implementation imports, the
recipe schema offers exactly the registered names, and an unknown name gets one "did you mean".
Run: pytest tests/unit/test_registry.py -q"""
from __future__ import annotations

import typing

import pytest

from distill.recipe.schema import Arm, Generation, Recipe
from distill.registry import (
    GENERATION_BACKENDS,
    HUMAN_PRIMITIVES,
    SLURM_RESOURCE_KEYS,
    TASK_ADAPTERS,
    WORLD_KINDS,
    Registry,
    did_you_mean,
)

pytestmark = pytest.mark.unit
REGISTRIES = (GENERATION_BACKENDS, HUMAN_PRIMITIVES, WORLD_KINDS, TASK_ADAPTERS)


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.what)
def test_every_entry_imports(registry: Registry):
    for name in registry:
        if name == "vllm":  # needs vLLM (a GPU machine): its module must at least exist
            import importlib.util

            assert importlib.util.find_spec(registry[name].partition(":")[0]) is not None
            continue
        assert registry.load(name) is not None, name


def test_the_schema_offers_the_registered_names():
    assert typing.get_args(Generation.model_fields["backend"].annotation) == GENERATION_BACKENDS.names
    assert typing.get_args(Arm.model_fields["human"].annotation) == ("human", *HUMAN_PRIMITIVES.names)
    world = Recipe.model_fields["world"].annotation
    kinds = {m.model_fields["kind"].default for m in typing.get_args(world)}  # every model of the World union
    assert kinds == set(WORLD_KINDS), world


def test_an_unknown_name_is_refused_with_the_closest_known_one():
    with pytest.raises(ValueError, match=r"unknown generation backend 'vlm' \(did you mean 'vllm'\?\)"):
        GENERATION_BACKENDS.load("vlm")
    with pytest.raises(ValueError, match=r"unknown task adapter 'zzz' \(known: gsm8k, metamath\)"):
        TASK_ADAPTERS.check("zzz")
    assert did_you_mean("nodez", SLURM_RESOURCE_KEYS) == " (did you mean 'nodes'?)"
    assert did_you_mean("zzz", ["a", "b"], list_known=False) == ""
    assert did_you_mean("lrr", ["lr", "lrs", "x"], n=3) == " (did you mean 'lr' or 'lrs'?)"


def test_a_primitive_declares_all_it_is_asked_in_its_own_module():
    """Every consumer (simulated expert, Label Studio, Argilla, model expert, allocator, pairs) reads a
    primitive through its ``Primitive``; one that leaves a part out fails here, not in a step."""
    from distill.human.primitives import Primitive, primitive_of
    from distill.recipe.schema import ExpertTimes

    required = ["simulate", "row", "label_studio_action", "argilla_question", "argilla_action", "read_reply"]
    for name in HUMAN_PRIMITIVES:
        kind = primitive_of(name)
        assert isinstance(kind, Primitive) and kind.name == name, name
        assert HUMAN_PRIMITIVES[name].startswith(type(kind).__module__
                                                 + ":"), "declared where it is registered"
        missing = [m for m in required if getattr(type(kind), m) is getattr(Primitive, m)]
        assert not missing, (name, missing)
        assert kind.time in ExpertTimes.model_fields and kind.question and kind.label_config and kind.prompt
        assert kind.shows in (1, 2)
