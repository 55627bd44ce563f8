"""Worlds: where prompts, human solutions, the test split and the verifier come from.

A task hands out plain rows; the answer a verifier checks travels in ``meta["answer"]``, so one
verifier serves every task: extract the final answer from a completion and compare.
"""
from __future__ import annotations

from distill.recipe.schema import ArithmeticWorld, DatasetWorld, ReasoningGymWorld
from distill.registry import WORLD_KINDS
from distill.world.task import Task

__all__ = ["Task", "build_task"]


def build_task(world: ArithmeticWorld | DatasetWorld | ReasoningGymWorld) -> Task:
    """The world's task, built by its kind's function (``WORLD_KINDS`` in distill/registry.py; each
    imported only when a recipe uses it)."""
    return WORLD_KINDS.load(world.kind)(world)


def arithmetic_task(world: ArithmeticWorld) -> Task:
    from distill.world import arithmetic as ar

    def prompts(count: int) -> list[dict]:
        return [{"id": p.id, "prompt": p.prompt, "meta": {"answer": p.answer}}
                for p in ar.problems(world, "prompts", count)]

    return Task(
        name="arithmetic",
        human=lambda: [ar.record(p) for p in ar.problems(world, "human", world.human_pool)],
        prompts=prompts,
        test=lambda: [ar.record(p) for p in ar.problems(world, "test", world.test_size)],
        extract_answer=ar.extract_answer,
        val=lambda: [ar.record(p) for p in ar.problems(world, "val", world.val_size)],
        corpus=lambda count: [ar.record(p) for p in ar.problems(world, "teacher", count)],
    )
