"""Worlds: where prompts, human solutions, the test split and the verifier come from.

A task hands out plain rows; the answer a verifier checks travels in ``meta["answer"]``, so one
verifier serves every task: extract the final answer from a completion and compare.
"""
from __future__ import annotations

from distill.recipe.schema import ArithmeticWorld, DatasetWorld, ReasoningGymWorld
from distill.world.task import Task

__all__ = ["Task", "build_task"]


def build_task(world: ArithmeticWorld | DatasetWorld | ReasoningGymWorld) -> Task:
    if isinstance(world, ArithmeticWorld):
        return _arithmetic(world)
    if isinstance(world, ReasoningGymWorld):
        from distill.world.reasoning_gym import reasoning_gym_task  # imported lazily: reasoning-gym is slow

        return reasoning_gym_task(world)
    from distill.world.datasets import dataset_task  # imported lazily: pulls in adapters

    return dataset_task(world)


def _arithmetic(world: ArithmeticWorld) -> Task:
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
