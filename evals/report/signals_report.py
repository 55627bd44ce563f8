"""The report's "Expert signals at equal hours" table (``evals.analysis.signals``): each preference arm
against its SFT arm and each allocated arm against random allocation, at the same N and expert hours."""
from __future__ import annotations

from collections.abc import Mapping

from evals.analysis.effort import budgets, curves
from evals.analysis.formatting import ci, number
from evals.analysis.signals import uses_at_budgets, versus
from evals.analysis.uncertainty import Replicates


def _uses(points, reps: Replicates, level: float) -> tuple[list[tuple], list[dict]]:
    """Every use (arm) at four budgets of expert hours, best first, with its lead over the next."""
    table, summary = [], []
    for hours, pts, lead in uses_at_budgets(points, budgets(points), reps, level):
        for rank, p in enumerate(pts):
            told = ""
            if rank == 0 and lead is not None:
                told = ci(lead, signed=True) + (" (within noise)" if lead.lower <= 0 <= lead.upper else "")
            table.append([f"{hours:.3g}" if rank == 0 else "", p.arm, str(p.n), f"{p.hours:.3g}", ci(p.score),
                          told])
            summary.append({"budget_hours": hours, "rank": rank, "arm": p.arm, "n": p.n, "hours": p.hours,
                            "score": p.score.estimate, "lower": p.score.lower, "upper": p.score.upper})
    if not table:
        return [], []
    return [("h", 3, "The best use of H expert hours"),
            ("table",
             ["H (hours)", "use (arm)", "N", "hours spent", "score (%) [CI]", "lead over the next (points)"],
             table)], summary


def section(reps: Replicates, arms: Mapping[str, Mapping], level: float) -> tuple[list[tuple], dict]:
    points = curves(reps, level)
    uses, used = _uses(points, reps, level)
    rows = versus(points, reps, arms, level)
    if not rows:
        return uses, {"uses": used, "versus": []}
    table = [[f"{v.arm} vs {v.baseline}", v.what, str(v.n), f"{v.hours:.3g} / {v.baseline_hours:.3g}",
              number(v.diff.estimate, signed=True), ci(v.diff, signed=True, with_estimate=False),
              "within noise" if v.within_noise else "outside noise"] for v in rows]
    note = ("Same expert work, two uses: each row is the arm minus its baseline at the same N, in "
            "points, with a "
            f"{round(100 * level)}% paired bootstrap interval over seeds and eval items; an interval that "
            f"includes 0 is within noise.")
    blocks = [("h", 2, "Expert signals at equal hours"), ("p", note),
              ("table",
               ["comparison", "differs in", "N", "expert hours (arm / baseline)", "difference (points)",
                         f"{round(100 * level)}% interval", "verdict"], table), *uses]
    summary = [{"arm": v.arm, "baseline": v.baseline, "what": v.what, "n": v.n, "hours": v.hours,
                "baseline_hours": v.baseline_hours, "estimate": v.diff.estimate, "lower": v.diff.lower,
                "upper": v.diff.upper, "within_noise": v.within_noise} for v in rows]
    return blocks, {"uses": used, "versus": summary}
