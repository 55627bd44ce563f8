"""Settings the recipe alone decides are unworkable, refused by ``distill validate`` (and the start of
``distill run``) instead of by the step that would reach them hours later.

Each rule here mirrors a refusal a step makes (``tests/unit/test_validate_parity.py`` pairs them): the
step keeps its own check as a last guard, this one makes it before the first GPU-hour.
"""
from __future__ import annotations

import json
from pathlib import Path

from distill.recipe.loading import RecipeError
from distill.recipe.schema import ArithmeticWorld, DatasetWorld, ReasoningGymWorld, Recipe
from distill.registry import TASK_ADAPTERS, did_you_mean


def check_settings(recipe: Recipe, where: str) -> None:
    """Raise ``RecipeError`` (one line: file, key, value) on the first unworkable setting."""
    for problem in (_adapter(recipe), _reasoning_gym(recipe), _experts(recipe), _online_kd(recipe),
                    _teacher_build(recipe), _generations(recipe), _seq_len(recipe), _against_human(recipe)):
        if problem:
            raise RecipeError(f"{where}: {problem}")


def _adapter(recipe: Recipe) -> str | None:
    world = recipe.world
    if not isinstance(world, DatasetWorld):
        return None

    for key in ("adapter", "prompts_adapter"):
        name = getattr(world, key)
        if name is not None and name not in TASK_ADAPTERS:
            return f"world.{key}={name!r}: no such task adapter{did_you_mean(name, TASK_ADAPTERS)}"
    return None


def _reasoning_gym(recipe: Recipe) -> str | None:
    """The dataset, its config and templates exist; arms that learn from the human pool have one."""
    world = recipe.world
    if not isinstance(world, ReasoningGymWorld):
        return None
    from distill.world import reasoning_gym as rg  # the world's own checks: a new rule needs no line here

    if problem := rg.check(world):
        return problem
    needs = [a.name
             for a in (recipe.mixes.arms if recipe.mixes else []) if a.fraction < 1 and a.human == "human"]
    if (needs or recipe.generations is not None) and world.human_pool is None:
        return f"world.human_pool is not set: {needs or 'generations'} learn from a human pool"
    if world.human_pool is not None and not rg.has_solutions(world):
        return rg.no_human_solutions(world) + (f" (arms {needs} need them)" if needs else "")
    return None


def _worked(recipe: Recipe) -> list[str]:
    """The human-effort primitives the arms use on teacher drafts (each one an expert step)."""
    return (sorted({a.human for a in recipe.mixes.arms} - {"human"}) if recipe.mixes and not recipe.teachers
            else [])


def _experts(recipe: Recipe) -> str | None:
    worked, experts = _worked(recipe), recipe.experts
    if not worked or experts is None:
        return None
    if experts.kind == "simulated" and not isinstance(recipe.world, ArithmeticWorld):
        return ("experts.kind='simulated' needs the embedded world's solver "
                f"(world.kind={recipe.world.kind!r}; "
                f"arms use {worked}): use kind=model or people (label_studio, argilla, prm800k)")
    if experts.kind == "prm800k" and (other := [p for p in worked if p != "first_error"]):
        return f"experts.kind='prm800k' imports first_error marks only, but arms use human: {other[0]!r}"
    if experts.kind == "source":
        return _work_elsewhere(recipe, worked)
    return None


def _work_elsewhere(recipe: Recipe, worked: list[str]) -> str | None:
    """experts.kind=source: the folder holds one primitive's finished work, the one every expert step
    of the recipe does; its rows are trained on as they are (no drafts: no pairs, no allocation)."""
    primitives = sorted(set(worked) | ({"first_error"} if recipe.verifier is not None else set()))
    if problem := work_folder_problem(recipe.experts.source, primitives):
        return problem
    arms = recipe.mixes.arms if recipe.mixes else []
    if bad := [a.name for a in arms if a.objective != "sft" or a.allocator is not None]:
        return (f"experts.kind=source: arm {bad[0]!r} needs the drafts the expert saw (objective dpo / apo "
                "or an allocator); work done elsewhere is trained on as rows only")
    return None


def work_folder_problem(folder: str, primitives: list[str]) -> str | None:
    """Why ``folder`` is not one primitive's finished work in an expert step's layout (``source/``,
    ``work.json``), or None. The expert step checks the same before it reads it."""
    root = Path(folder).expanduser()
    if not (root / "source" / "data" / "dataset_info.json").exists():
        return (f"experts.source={folder!r}: no source/ with a datasets folder inside (an expert step's "
                "layout: source/ and work.json, as `python -m distill.human.champ OUT` writes)")
    try:
        done = json.loads((root / "work.json").read_text()).get("primitive")
    except (OSError, ValueError, AttributeError) as exc:
        return f"experts.source={folder!r}: work.json is missing or not a JSON object ({type(exc).__name__})"
    if primitives != [done]:
        return (f"experts.source={folder!r} holds {done!r} work, but the recipe's expert steps do "
                f"{primitives}")
    return None


def _online_kd(recipe: Recipe) -> str | None:
    kd = recipe.train.kd
    if kd.weight > 0 and kd.source == "online" and recipe.generations is not None:
        # a mixes sweep's students learn from its teacher; a lineage's from the data its parent wrote
        return ("train.kd.source='online' needs one teacher (a mixes sweep); the generations section trains "
                "each student on its parent's data: use kd.weight=0 there")
    return None


def _teacher_build(recipe: Recipe) -> str | None:
    if not isinstance(recipe.world, (ArithmeticWorld, ReasoningGymWorld)) or recipe.world.val_size > 0:
        return None
    built = [t for t in ((recipe.teachers or [recipe.teacher]) if recipe.mixes else []) if t.model is None]
    if built:
        return "world.val_size=0: the built teacher (teacher.build) stops on a validation split; set it > 0"
    return None


def _seq_len(recipe: Recipe) -> str | None:
    """A built student has positions for ``max_position_embeddings`` tokens; packed rows longer than
    that train positions it never meant to hold (or, at 10**9, fill the memory first)."""
    arch, seq_len = recipe.student.arch, recipe.train.seq_len
    if recipe.student.model is None and seq_len > arch.max_position_embeddings:
        return (f"train.seq_len={seq_len}: longer than the built student's student.arch."
                f"max_position_embeddings={arch.max_position_embeddings}; lower one or raise the other")
    return None


def _generations(recipe: Recipe) -> str | None:
    g = recipe.generations
    if g is not None and g.prompts is None and recipe.world.human_pool is None:
        return "generations.prompts is required when world.human_pool is not set"
    return None


def _against_human(recipe: Recipe) -> str | None:
    if recipe.generation.filters.dedup_against_human and recipe.world.human_pool is None \
            and isinstance(recipe.world, ReasoningGymWorld):  # a dataset world's None is its whole split
        return ("generation.filters.dedup_against_human=true but world.human_pool is not set: there is no "
                "human pool to deduplicate against")
    return None
