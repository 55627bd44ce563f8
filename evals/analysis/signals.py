"""The same expert work used two ways, compared at equal expert hours: a preference arm against the SFT
arm it started from (pick -> DPO vs pick -> SFT, edit -> APO vs edit -> SFT), and an allocated arm
against random allocation of the same hours. Pure: reads the effort curves (``effort.curves``).

Pairs come from the arms' descriptions (the records' ``meta.arms``): a preference arm's baseline is the
SFT arm with the same source, fraction and allocator; an allocated arm's is the ``random`` one with
the same source, fraction and objective. The comparison is made at every N both arms measured, where
they spent the same hours by construction (the hours of both are shown, so a mismatch is visible).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evals.analysis.effort import Point, best_affordable
from evals.analysis.uncertainty import Interval, Replicates, interval


@dataclass(frozen=True)
class Versus:
    arm: str
    baseline: str
    what: str  # "objective" or "allocator"
    n: int
    hours: float
    baseline_hours: float
    diff: Interval  # arm - baseline, score units
    within_noise: bool


def _same(a: Mapping, b: Mapping, keys: Sequence[str]) -> bool:
    return all(a.get(k) == b.get(k) for k in keys)


def pairings(arms: Mapping[str, Mapping]) -> list[tuple[str, str, str]]:
    """(arm, baseline, what differs) for every preference or allocated arm that has its baseline."""
    out = []
    for name, a in arms.items():
        if a.get("objective"):
            base = [b
                    for b, m in arms.items()
                    if not m.get("objective") and _same(a, m, ("human", "fraction", "allocator"))]
            out += [(name, base[0], "objective")] if base else []
        if a.get("allocator") not in (None, "random"):
            base = [b for b, m in arms.items() if m.get("allocator") == "random"
                    and _same(a, m, ("human", "fraction", "objective"))]
            out += [(name, base[0], "allocator")] if base else []
    return out


def versus(points: Mapping[str, list[Point]], reps: Replicates, arms: Mapping[str, Mapping],
           level: float) -> list[Versus]:
    out = []
    for arm, base, what in pairings(arms):
        mine, theirs = {p.n: p for p in points.get(arm, [])}, {p.n: p for p in points.get(base, [])}
        for n in sorted(set(mine) & set(theirs)):
            a, b = mine[n], theirs[n]
            diff = interval(a.reps - b.reps, a.score.estimate - b.score.estimate, level,
                            reps.dof([arm, base]))
            out.append(Versus(arm, base, what, n, a.hours, b.hours, diff,
                              bool(diff.lower <= 0.0 <= diff.upper)))
    return out


def uses_at_budgets(points: Mapping[str, list[Point]], hours_list: Sequence[float], reps: Replicates,
                    level: float) -> list[tuple[float, list[Point], Interval | None]]:
    """At each budget of expert hours, every use's best affordable point (the largest score an arm
    reaches within the budget), best first, and the best one's lead over the next: the "best use of
    H expert hours" table."""
    out = []
    for hours in hours_list:
        best = sorted((p for pts in points.values() if (p := best_affordable(pts, hours)) is not None),
                      key=lambda p: -p.score.estimate)
        lead = None
        if len(best) > 1:
            a, b = best[0], best[1]
            lead = interval(a.reps - b.reps, a.score.estimate - b.score.estimate, level,
                            reps.dof([a.arm, b.arm]))
        out.append((hours, best, lead))
    return out
