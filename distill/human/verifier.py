"""Step marks as a verifier: the labels a step scorer (PRM) learns from ``first_error`` marks, and how
its step scores rerank a student's n samples. Pure functions, no I/O, no torch (the scorer itself is
``distill.training.prm``).

Labels (Lightman et al. 2023, PRM800K): the steps before the expert's first mark are good (1), the
marked step is bad (0). The steps after it were never judged: ``after_mark`` says what they become,
``"drop"`` (unlabelled, ``None``: the scorer is not trained on them) or ``"bad"`` (0, as if one wrong
step spoils the rest). A draft without a mark is good at every step. A draft marked just past its
last step stopped early: its last step, where the missing one was due, is the bad one.

The outcome-only baseline (the implicit-PRM idea of Cui et al. 2025: no step marks bought) labels
every step of a draft with its final answer's correctness, from the verifier alone.

Reranking: a solution's score is the minimum or the product of its step scores; best-of-n takes the
highest (the first shown on ties). Majority vote takes the most frequent final answer (first seen on
ties). The localisation accuracy of a scorer is the share of held-out marked drafts where its first
step scored below ``threshold`` is the expert's mark (no step below it = no mark).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from distill.human.expert import steps

AfterMark = Literal["drop", "bad"]
AFTER_MARK: tuple[str, ...] = ("drop", "bad")
Aggregate = Literal["min", "product"]


def prm_labels(completion: str, mark_step: int | None, after_mark: AfterMark = "drop") -> list[int | None]:
    """One label per step of ``completion`` from the expert's first-error mark (see the module doc)."""
    if after_mark not in AFTER_MARK:
        raise ValueError(f"after_mark={after_mark!r}: expected one of {AFTER_MARK}")
    n = len(steps(completion))
    if mark_step is None:
        return [1] * n
    bad = min(mark_step, n - 1)  # marked past the end: it stopped where a step was due
    after = [0 if after_mark == "bad" else None] * (n - bad - 1)
    return [1] * bad + [0] + after


def outcome_labels(completion: str, correct: bool) -> list[int]:
    """The outcome-only baseline's labels: every step carries the final answer's correctness."""
    return [int(correct)] * len(steps(completion))


def solution_score(step_scores: Sequence[float], how: Aggregate = "min") -> float:
    """A solution's score from its steps' (probability of a good step)."""
    if not step_scores:
        return 0.0
    if how == "min":
        return float(min(step_scores))
    if how == "product":
        return float(math.prod(step_scores))
    raise ValueError(f"aggregate={how!r}: expected 'min' or 'product'")


def best_of_n(scores: Sequence[float]) -> int:
    """Index of the highest-scored sample (the first on ties)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def majority_vote(answers: Sequence[str | None]) -> int:
    """Index of the first sample whose answer is the most frequent one (unanswered samples never win
    unless every sample is unanswered)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return 0
    top = max(counts.values())
    return next(i for i, a in enumerate(answers) if a is not None and counts[a] == top)


def first_low_step(step_scores: Sequence[float], threshold: float = 0.5) -> int | None:
    """The first step a scorer calls bad (None: none)."""
    return next((i for i, s in enumerate(step_scores) if s < threshold), None)


def localisation_accuracy(predicted: Sequence[int | None], marked: Sequence[int | None]) -> float:
    """Share of drafts whose predicted first bad step is the expert's mark (both None counts)."""
    if len(predicted) != len(marked) or not marked:
        raise ValueError(f"{len(predicted)} predictions for {len(marked)} marked drafts")
    return sum(p == m for p, m in zip(predicted, marked)) / len(marked)
