"""The simulated expert of the embedded world: it knows every correct step (the world's own solver).

A solution is a chain of steps separated by ``;`` (``7+9=16;4+8+1=13;3+5+1=9;A:936``). The expert
compares a teacher draft with the solver's chain step by step, so it can

- ``edit``: rewrite a draft into the correct solution (a correct draft stays as it is);
- ``mark``: point at the first wrong step (``None``: no wrong step). A draft that stops early is
  marked at the step it is missing, one that runs on at its first extra step;
- ``pick``: choose the better of two drafts of one prompt, or neither. Rule: the solver decides
  correctness (the final answer); between two right or two wrong drafts, fewer wrong steps wins, then
  the shorter, then the first shown. A draft whose final answer is wrong is never picked for training
  on (two wrong answers: neither), but the preference between them is kept (``Action.prefer``): a
  preference pair says which wrong draft is less wrong.

Experts are not perfect: with probability ``error_rate`` (seeded per draft, so reruns agree) an
action goes wrong: an edit misses the error and keeps the draft, a mark misses the error (no
mark), a pick takes the other draft (or the first one when the rule says neither) and its
preference is the other draft.
Seconds per action come from the recipe (``experts.times``); see recipes/human-effort.yaml for the
published measurements behind the defaults.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from distill.recipe.schema import ExpertTimes

SEP = ";"
_PROMPT = re.compile(r"^Q:(\d+)([+-])(\d+)=$")
Choice = Literal["a", "b", "neither"]


def steps(text: str) -> list[str]:
    return text.split(SEP) if text else []


def step_offset(text: str, index: int) -> int:
    """Character offset where step ``index`` of ``text`` starts (len(text) + 1 past the last step)."""
    return sum(len(s) + 1 for s in steps(text)[:index])


def arithmetic_reference(prompt: str) -> str:
    """The world's solver applied to an arithmetic prompt ``Q:<a><op><b>=``."""
    from distill.world.arithmetic import solve

    match = _PROMPT.match(prompt)
    if match is None:
        raise ValueError(f"simulated expert: {prompt!r} is not an arithmetic prompt 'Q:<a><op><b>='")
    return solve(int(match.group(1)), match.group(2), int(match.group(3)))


def first_wrong_step(draft: str, reference: str) -> int | None:
    """Index of the first step of ``draft`` that differs from ``reference``; None when they agree."""
    mine, right = steps(draft), steps(reference)
    for i, step in enumerate(mine):
        if i >= len(right) or step != right[i]:
            return i
    return None if len(mine) == len(right) else len(mine)


@dataclass(frozen=True)
class Action:
    """What the expert did to one item, and what it cost."""

    kind: Literal["write", "edit", "mark", "pick"]
    seconds: float
    completion: str | None = None  # write/edit: the solution; pick: the chosen draft (None: neither)
    mark: int | None = None  # mark: index of the first wrong step (None: no mark)
    choice: Choice | None = None
    prefer: Literal["a", "b"] | None = None  # pick: the better draft by the rule, also when neither is picked
    erred: bool = False  # the simulated expert made a mistake on this item


class SimulatedExpert:
    """An expert that solves with ``reference`` (prompt -> correct solution)."""

    name = "simulated-expert"
    simulated = True

    def __init__(self, times: ExpertTimes, error_rate: float = 0.0, seed: int = 0,
                 reference: Callable[[str], str] = arithmetic_reference):
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"simulated expert: error_rate={error_rate} is outside [0, 1]")
        self.times, self.error_rate, self.seed, self.reference = times, error_rate, seed, reference

    def _errs(self, action: str, item: str) -> bool:
        if self.error_rate == 0.0:
            return False
        digest = hashlib.sha256(f"distill.expert:{self.seed}:{action}:{item}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big")).random() < self.error_rate

    def write(self, prompt: str) -> Action:
        return Action("write", self.times.write_s, completion=self.reference(prompt))

    def edit(self, item: str, prompt: str, draft: str) -> Action:
        right = self.reference(prompt)
        erred = draft != right and self._errs("edit", item)
        return Action("edit", self.times.edit_s, completion=draft if erred else right, erred=erred)

    def mark(self, item: str, prompt: str, draft: str) -> Action:
        where = first_wrong_step(draft, self.reference(prompt))
        erred = where is not None and self._errs("mark", item)
        return Action("mark", self.times.mark_s, mark=None if erred else where, erred=erred)

    def pick(self, item: str, prompt: str, a: str, b: str) -> Action:
        reference = self.reference(prompt)
        choice, better = pick_rule(a, b, reference), prefer(a, b, reference)
        erred = self._errs("pick", item)
        if erred:
            choice, better = {"a": "b", "b": "a", "neither": "a"}[choice], {"a": "b", "b": "a"}[better]
        chosen = {"a": a, "b": b, "neither": None}[choice]
        return Action("pick", self.times.pick_s, completion=chosen, choice=choice, prefer=better, erred=erred)


def _answer(text: str) -> str | None:
    last = steps(text)[-1:] or [""]
    return last[0] if last[0].startswith("A:") else None


def wrong_steps(draft: str, reference: str) -> int:
    """Steps of ``draft`` that differ from the reference's step at the same place, plus the steps it
    lacks or adds."""
    mine, right = steps(draft), steps(reference)
    return sum(x != y for x, y in zip(mine, right)) + abs(len(mine) - len(right))


def prefer(a: str, b: str, reference: str) -> Literal["a", "b"]:
    """The better of two drafts whatever their answers: the right final answer, then fewer wrong steps,
    then the shorter, then the first shown."""
    answer = _answer(reference)

    def rank(draft: str) -> tuple[int, int, int]:
        return (int(_answer(draft) == answer), -wrong_steps(draft, reference), -len(draft))

    return "a" if rank(a) >= rank(b) else "b"


def pick_rule(a: str, b: str, reference: str) -> Choice:
    """The draft to train on, by the rule in the module docstring: neither when both answers are wrong."""
    answer = _answer(reference)
    if _answer(a) != answer and _answer(b) != answer:
        return "neither"
    return prefer(a, b, reference)
