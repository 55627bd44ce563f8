"""The report's "Expert signals at equal hours" table (``evals.analysis.signals``): each preference arm
against its SFT arm and each allocated arm against random allocation, at the same N and expert hours."""
from __future__ import annotations

from collections.abc import Mapping

from evals.analysis.effort import curves
from evals.analysis.signals import versus
from evals.analysis.uncertainty import Replicates


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def section(reps: Replicates, arms: Mapping[str, Mapping], level: float) -> tuple[list[tuple], list[dict]]:
    rows = versus(curves(reps, level), reps, arms, level)
    if not rows:
        return [], []
    table = [[f"{v.arm} vs {v.baseline}", v.what, str(v.n), f"{v.hours:.3g} / {v.baseline_hours:.3g}",
              _pts(v.diff.estimate), f"[{_pts(v.diff.lower)}, {_pts(v.diff.upper)}]",
              "within noise" if v.within_noise else "outside noise"] for v in rows]
    note = (f"Same expert work, two uses: each row is the arm minus its baseline at the same N, in points, with a "
            f"{round(100 * level)}% paired bootstrap interval over seeds and eval items; an interval that "
            f"includes 0 is within noise.")
    blocks = [("h", 2, "Expert signals at equal hours"), ("p", note),
              ("table", ["comparison", "differs in", "N", "expert hours (arm / baseline)", "difference (points)",
                         f"{round(100 * level)}% interval", "verdict"], table)]
    summary = [{"arm": v.arm, "baseline": v.baseline, "what": v.what, "n": v.n, "hours": v.hours,
                "baseline_hours": v.baseline_hours, "estimate": v.diff.estimate, "lower": v.diff.lower,
                "upper": v.diff.upper, "within_noise": v.within_noise} for v in rows]
    return blocks, summary
