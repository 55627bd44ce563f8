"""Which teacher drafts an expert works on, under a budget of expert hours. Pure functions, no I/O.

The expert step (``distill.human.stage``) hands the expert the drafts of the first ``experts.drafts``
prompts unless an arm names an allocator; then the prompts are ranked by the policy and taken in that
order while the budget (``experts.hours``) lasts:

- ``random``: a seeded shuffle (the baseline an allocation is compared with at equal hours);
- ``verifier_failed``: prompts with a draft the world's verifier rejects first (a draft is rejected
  when the merge kept it in ``synthetic`` but not in ``verified``), then the rest in random order;
- ``disagreement``: prompts whose drafts end in different final answers first (no student exists
  before the expert step, so the teacher's samples of the prompt stand in for the student's);
- ``roi``: predicted gain per predicted second. Gain: the share of the shown drafts the verifier
  rejects, plus ``RIGHT_GAIN`` (a right draft still teaches a little); seconds: the action's time
  from the recipe scaled by the drafts' steps against ``REFERENCE_STEPS``, the steps of the problems
  the recipe's times were set for.

The simulated expert's seconds per action are the recipe's constants, so every policy buys the same
number of items with the same hours; roi's length-scaled seconds rank, they do not change the ledger.
Ties keep the seeded random order, so every policy is a reordering of the same shuffle.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

POLICIES = ("random", "verifier_failed", "disagreement", "roi")
REFERENCE_STEPS = 3.0
RIGHT_GAIN = 0.1


@dataclass(frozen=True)
class Choice:
    prompt_id: str
    rank: int  # position in the policy's order
    priority: float  # the policy's score (higher first)
    seconds: float  # the expert seconds the item costs (the ledger's)
    predicted_s: float  # roi's predicted seconds


def final_answer(text: str) -> str:
    """The last step or line of a solution: what disagreeing drafts differ in."""
    return text.replace("\n", ";").rstrip(";").split(";")[-1].strip()


def _steps(text: str) -> int:
    return max(1, len([s for s in text.replace("\n", ";").split(";") if s.strip()]))


def _shows(primitive: str) -> int:
    from distill.human.primitives import primitive_of

    return primitive_of(primitive).shows


def predicted_seconds(action_s: float, drafts: Sequence[dict], primitive: str) -> float:
    shown = drafts[:_shows(primitive)]
    return action_s * sum(_steps(d["completion"]) for d in shown) / (REFERENCE_STEPS * len(shown))


def _priority(policy: str, drafts: Sequence[dict], primitive: str, rejected: Callable[[dict], bool],
              action_s: float) -> float:
    shown = drafts[:_shows(primitive)]
    if policy == "random":
        return 0.0
    if policy == "verifier_failed":
        return float(any(rejected(d) for d in shown))
    if policy == "disagreement":
        return float(len({final_answer(d["completion"]) for d in drafts}) > 1)
    if policy == "roi":
        gain = sum(rejected(d) for d in shown) / len(shown) + RIGHT_GAIN
        return gain / predicted_seconds(action_s, drafts, primitive)
    raise ValueError(f"allocator {policy!r}: expected one of {POLICIES}")


def allocate(groups: Mapping[str, Sequence[dict]], policy: str, budget_s: float, action_s: float,
             primitive: str, rejected: Callable[[dict], bool], seed: int = 0) -> list[Choice]:
    """The prompts the expert works on, in order, while ``budget_s`` expert seconds last."""
    if policy not in POLICIES:
        raise ValueError(f"allocator {policy!r}: expected one of {POLICIES}")
    ids = list(groups)
    digest = hashlib.sha256(f"distill.allocator:{seed}:{primitive}".encode()).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(ids)
    scored = [(_priority(policy, groups[i], primitive, rejected, action_s), i) for i in ids]
    order = sorted(range(len(scored)), key=lambda k: -scored[k][0])  # stable: ties keep the shuffle
    out, spent = [], 0.0
    for rank, k in enumerate(order):
        if spent + action_s > budget_s + 1e-9:
            break
        priority, prompt_id = scored[k]
        out.append(Choice(prompt_id, rank, priority, action_s,
                          predicted_seconds(action_s, groups[prompt_id], primitive)))
        spent += action_s
    return out
