"""What each mix costs, the cost-vs-score Pareto frontier, and the best mix at a budget.

A run's cost ledger (``RunScore.cost``; every entry optional, default 0):
- ``teacher_s``: teacher device-seconds for this run's synthetic examples, rejected samples included
  (``teacher_seconds`` computes it from a generation job's totals);
- ``human``: human examples paid for (unique; repeats over epochs cost nothing more);
- ``human_s``: expert seconds behind the run's data (the human-time ledger: once per unique example,
  ``distill.human.ledger``); priced per expert hour, and the second axis of ``expert_frontier``;
- ``train_s``, ``eval_s``: wall seconds; multiplied by ``train_devices`` / ``eval_devices`` (default 1)
  into device-seconds; ``teacher_devices`` likewise multiplies ``teacher_s`` when it is wall time.
Prices convert each resource to one currency (any unit, e.g. dollars or GPU-hours). Each run is costed
as if produced on its own (the marginal cost of that mix), not shared with the sweep's other runs.
Pure functions; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evals.analysis.records import Cost
from evals.analysis.saturation import RunScore, as_runs
from evals.analysis.uncertainty import NoiseCheck, within_noise


@dataclass(frozen=True)
class Prices:
    teacher_device_s: float = 0.0  # per teacher device-second
    human_example: float = 0.0  # per human example
    train_device_s: float = 0.0  # per training device-second
    eval_device_s: float = 0.0  # per evaluation device-second
    expert_s: float = 0.0  # per second of expert time (an expert hour's price / 3600)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value >= 0:
                raise ValueError(f"Prices.{name}={value}: prices must be >= 0")


@dataclass(frozen=True)
class CostLedger:
    teacher: float
    human: float
    train: float
    eval: float

    @property
    def total(self) -> float:
        return self.teacher + self.human + self.train + self.eval


def teacher_seconds(n_synthetic: int, generation_device_s: float, n_accepted: int) -> float:
    """Teacher device-seconds charged to n_synthetic examples: generation cost per accepted example.

    generation_device_s covers every sample drawn, including those the filters rejected, so a strict
    filter makes each accepted example dearer.
    """
    if n_synthetic == 0:
        return 0.0
    if n_accepted <= 0:
        raise ValueError(f"teacher_seconds: n_accepted={n_accepted} with {n_synthetic} synthetic used")
    return n_synthetic * generation_device_s / n_accepted


def ledger(cost: Cost | Mapping[str, float], prices: Prices) -> CostLedger:
    """Price one run's resource use."""
    c = Cost.of(cost)
    return CostLedger(
        teacher=c.teacher_s * c.teacher_devices * prices.teacher_device_s,
        human=c.human * prices.human_example + c.human_s * prices.expert_s,
        train=c.train_s * c.train_devices * prices.train_device_s,
        eval=c.eval_s * c.eval_devices * prices.eval_device_s)


@dataclass(frozen=True)
class MixPoint:
    """One mix (arm, N), averaged over its feasible seeds."""

    arm: str
    fraction: float
    n: int
    cost: float  # mean total cost per run
    score: float  # mean score
    scores: tuple[float, ...]  # per seed
    ledger: CostLedger  # mean per run
    human_hours: float = 0.0  # mean expert hours per run


@dataclass(frozen=True)
class Frontier:
    points: tuple[MixPoint, ...]  # every mix, cheapest first
    pareto: tuple[MixPoint, ...]  # no other mix is at least as good for no more cost; cheapest first


def _mix_point(runs: list[RunScore], prices: Prices) -> MixPoint:
    books = [ledger(r.cost, prices) for r in runs]
    parts = ("teacher", "human", "train", "eval")
    mean = CostLedger(*(float(np.mean([getattr(b, f) for b in books])) for f in parts))
    scores = tuple(r.score for r in runs)
    first = runs[0]
    hours = float(np.mean([r.cost.human_s for r in runs])) / 3600.0
    return MixPoint(first.arm, first.fraction, first.n, mean.total, float(np.mean(scores)), scores, mean,
                    hours)


def frontier(records: Sequence[Mapping[str, Any] | RunScore], prices: Prices) -> Frontier:
    """Mixes costed and scored, and their Pareto frontier (infeasible runs are left out)."""
    groups: dict[tuple[str, int], list[RunScore]] = {}
    for run in as_runs(records):
        if run.feasible:
            groups.setdefault((run.arm, run.n), []).append(run)
    points = sorted((_mix_point(runs, prices) for runs in groups.values()), key=lambda p: (p.cost, -p.score))
    pareto, best = [], -math.inf
    for p in points:  # cheapest first: keep a point only if it beats everything no dearer
        if p.score > best:
            pareto.append(p)
            best = p.score
    return Frontier(tuple(points), tuple(pareto))


def expert_frontier(front: Frontier) -> tuple[MixPoint, ...]:
    """The Pareto frontier on the human-time axis: no other mix scores at least as well for no more
    expert hours (fewest hours first; mixes without expert time sit at 0 h)."""
    out, best = [], -math.inf
    for p in sorted(front.points, key=lambda p: (p.human_hours, -p.score)):
        if p.score > best:
            out.append(p)
            best = p.score
    return tuple(out)


@dataclass(frozen=True)
class Recommendation:
    mix: MixPoint  # the highest mean score affordable
    cheapest_equivalent: MixPoint  # the cheapest frontier mix within seed noise of it (may be mix itself)
    noise: NoiseCheck | None  # mix vs cheapest_equivalent; None when they are the same mix


def recommend(front: Frontier, budget: float) -> Recommendation | None:
    """Best mix whose cost per run fits the budget; None when nothing is affordable.

    Also names the cheapest frontier mix whose score is within seed noise of the best (``within_noise``
    on the seed scores): a cheaper choice that the data cannot tell apart from the best.
    """
    affordable = [p for p in front.pareto if p.cost <= budget]
    if not affordable:
        return None
    best = affordable[-1]
    for p in affordable[:-1]:
        check = within_noise(p.scores, best.scores)
        if check.within:
            return Recommendation(best, p, check)
    return Recommendation(best, best, None)
