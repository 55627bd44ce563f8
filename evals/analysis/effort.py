"""Score per expert hour: which way of using an expert's time improves the student most.

Pure analysis on the report's shared bootstrap replicates (``evals.analysis.uncertainty.resample``: paired
over seeds and items), so every difference below is paired and its interval is a percentile
interval of the same replicates. Each run's expert time is ``cost.human_s`` (the human-time ledger:
once per unique example). A point is one (arm, N): mean expert hours over its seeds, mean score.

- ``curves``: per arm, score vs expert hours with intervals;
- ``at_budgets``: at a few budgets of expert hours, each arm's best affordable point (chosen on the
  observed means; arms without expert time are affordable at every budget); the best arm, its lead
  over the runner-up with an interval, "within noise" when that interval includes zero;
- ``gains``: per arm and N, the gain over the raw teacher drafts (the zero-hour arm at the same N)
  per expert hour, and the marginal gain per expert hour from the arm's previous N.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evals.analysis.formatting import ci
from evals.analysis.uncertainty import Interval, Replicates, clipped, interval


@dataclass(frozen=True)
class Point:
    arm: str
    n: int
    hours: float  # mean expert hours per run
    score: Interval  # mean score
    reps: np.ndarray  # (B,) replicate mean scores


@dataclass(frozen=True)
class Budget:
    hours: float
    arm: str
    point: Point
    runner_up: str | None
    lead: Interval | None
    within_noise: bool


@dataclass(frozen=True)
class Gain:
    arm: str
    n: int
    hours: float
    over_raw: Interval | None  # (score - raw score at this N) per expert hour, points per hour
    marginal: Interval | None  # (score - previous N's score) / extra hours, points per hour
    over_raw_within_noise: bool


def curves(reps: Replicates, level: float) -> dict[str, list[Point]]:
    """Per arm, its points sorted by expert hours (then N)."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, run in enumerate(reps.runs):
        if run.feasible:
            groups.setdefault((run.arm, run.n), []).append(i)
    out: dict[str, list[Point]] = {}
    for (arm, n), cols in groups.items():
        hours = float(np.mean([reps.runs[i].cost.human_s for i in cols])) / 3600.0
        obs = float(np.mean([reps.runs[i].score for i in cols]))
        rep = reps.scores[:, cols].mean(axis=1)
        out.setdefault(arm,
                       []).append(Point(arm, n, hours, clipped(interval(rep, obs, level, reps.dof([arm]))),
                                        rep))
    return {arm: sorted(pts, key=lambda p: (p.hours, p.n)) for arm, pts in out.items()}


def expert_arms(points: Mapping[str, list[Point]]) -> list[str]:
    return [arm for arm, pts in points.items() if any(p.hours > 0 for p in pts)]


def budgets(points: Mapping[str, list[Point]], count: int = 4) -> list[float]:
    """Budgets spread evenly on a log scale over the hours the expert arms spent (2 significant digits)."""
    hours = sorted({p.hours for arm in expert_arms(points) for p in points[arm] if p.hours > 0})
    if not hours:
        return []
    if len(hours) == 1 or count == 1:
        return [hours[-1]]
    grid = np.geomspace(hours[0], hours[-1], count)
    return sorted({_ceil2(h) for h in grid})


def _ceil2(x: float) -> float:
    """Rounded up to 2 significant digits: a budget never falls just below the point it is meant to afford."""
    unit = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / unit - 1e-9) * unit:.2g}")


def best_affordable(pts: Sequence[Point], hours: float) -> Point | None:
    ok = [p for p in pts if p.hours <= hours * (1 + 1e-9)]
    return max(ok, key=lambda p: p.score.estimate) if ok else None


def at_budgets(points: Mapping[str, list[Point]], hours_list: Sequence[float], reps: Replicates,
               level: float) -> list[Budget]:
    out = []
    for hours in hours_list:
        best = {arm: p for arm, pts in points.items() if (p := best_affordable(pts, hours)) is not None}
        if not best:
            continue
        order = sorted(best, key=lambda a: -best[a].score.estimate)
        top = best[order[0]]
        if len(order) == 1:
            out.append(Budget(hours, order[0], top, None, None, False))
            continue
        second = best[order[1]]
        lead = interval(top.reps - second.reps, top.score.estimate - second.score.estimate, level,
                        reps.dof([order[0], order[1]]))
        out.append(Budget(hours, order[0], top, order[1], lead, bool(lead.lower <= 0.0)))
    return out


def _raw_arm(points: Mapping[str, list[Point]], raw: str | None) -> str | None:
    if raw is not None:
        return raw if raw in points else None
    zero = [arm for arm, pts in points.items() if all(p.hours == 0 for p in pts)]
    return zero[0] if zero else None


def gains(points: Mapping[str, list[Point]], reps: Replicates, level: float,
          raw: str | None = None) -> list[Gain]:
    """Gain per expert hour over the raw drafts (same N) and from the previous N; points per hour."""
    raw = _raw_arm(points, raw)
    raw_at = {p.n: p for p in points.get(raw, [])} if raw else {}
    out = []
    for arm in expert_arms(points):
        prev = None
        for p in sorted(points[arm], key=lambda q: q.n):
            over, marginal = None, None
            dof = reps.dof([arm] + ([raw] if raw else []))
            if p.hours > 0 and p.n in raw_at:
                r = raw_at[p.n]
                over = interval((p.reps - r.reps) / p.hours * 100,
                                (p.score.estimate - r.score.estimate) / p.hours * 100, level, dof)
            if prev is not None and p.hours > prev.hours:
                dh = p.hours - prev.hours
                marginal = interval((p.reps - prev.reps) / dh * 100,
                                    (p.score.estimate - prev.score.estimate) / dh * 100, level,
                                    reps.dof([arm]))
            within = over is None or over.lower <= 0.0 <= over.upper
            out.append(Gain(arm, p.n, p.hours, over, marginal, within))
            prev = p
    return out


def verdict(budget_rows: Sequence[Budget], gain_rows: Sequence[Gain], labels: Mapping[str, str]) -> str:
    """Sentences from the numbers: the best arm at each budget, the largest gain per expert hour."""
    said = []
    for b in budget_rows:
        text = (f"At {b.hours:g} expert hours per run, {labels.get(b.arm, b.arm)} is best "
                f"({ci(b.point.score)} points")
        if b.lead is None:
            said.append(text + ").")
            continue
        noise = "within noise" if b.within_noise else "outside seed and item noise"
        said.append(text
                    + f"), ahead of {labels.get(b.runner_up, b.runner_up)} by {ci(b.lead)} points "
                      f"({noise}).")
    first = {}
    for g in gain_rows:
        if g.over_raw is not None and g.arm not in first:
            first[g.arm] = g
    if first:
        top = max(first.values(), key=lambda g: g.over_raw.estimate)
        noise = "within noise of zero" if top.over_raw_within_noise else "outside noise"
        said.append(f"Per expert hour, {labels.get(top.arm, top.arm)} buys the most over the raw "
                    "teacher drafts: "
                    f"{ci(top.over_raw, scale=1.0, signed=True, unit=' points per hour')} "
                    f"at N={top.n} ({noise}).")
    return " ".join(said) if said else "No arm spent expert time: nothing to compare per expert hour."
