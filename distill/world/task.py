"""A task: what a world hands the pipeline (its own module so world kinds import it without a circle)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    human: Callable[[], list[dict]]  # the human pool: source rows {id, prompt, completion, origin, meta}
    prompts: Callable[[int], list[dict]]  # prompts for the teacher: {id, prompt, meta: {answer}}
    test: Callable[[], list[dict]]  # held-out rows with reference completion and meta.answer
    extract_answer: Callable[[str], str | None]
    val: Callable[[], list[dict]] = list  # held-out rows of the human distribution for early stopping
    # (row, extracted answer) -> correct; None: the extracted answer equals meta.answer. A world whose
    # dataset ships its own scorer (reasoning-gym's score_answer) passes it here.
    scorer: Callable[[dict, str | None], bool] | None = None
    # solved rows for a teacher distill builds itself, from a stream no other split draws from
    corpus: Callable[[int], list[dict]] | None = None

    def verify(self, row: dict, completion: str) -> bool:
        if self.scorer is not None:
            return self.scorer(row, self.extract_answer(completion))
        answer = (row.get("meta") or {}).get("answer")
        return answer is not None and self.extract_answer(completion) == str(answer)
