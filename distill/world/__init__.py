"""Worlds: where prompts, human solutions, the test split and the verifier come from.

A task hands out plain rows; the answer a verifier checks travels in ``meta["answer"]``, so one
verifier serves every task: extract the final answer from a completion and compare.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from distill.recipe.schema import ArithmeticWorld, DatasetWorld


@dataclass(frozen=True)
class Task:
    name: str
    human: Callable[[], list[dict]]  # the human pool: source rows {id, prompt, completion, origin, meta}
    prompts: Callable[[int], list[dict]]  # prompts for the teacher: {id, prompt, meta: {answer}}
    test: Callable[[], list[dict]]  # held-out rows with reference completion and meta.answer
    extract_answer: Callable[[str], str | None]
    val: Callable[[], list[dict]] = list  # held-out rows of the human distribution for early stopping

    def verify(self, row: dict, completion: str) -> bool:
        answer = (row.get("meta") or {}).get("answer")
        return answer is not None and self.extract_answer(completion) == str(answer)


def build_task(world: ArithmeticWorld | DatasetWorld) -> Task:
    if isinstance(world, ArithmeticWorld):
        return _arithmetic(world)
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
    )
