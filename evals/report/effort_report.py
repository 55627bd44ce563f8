"""The report's human-effort section: score vs expert hours, best arm per budget, gain per hour.

``section`` returns the section's blocks (for report.md / report.html), its JSON summary and the
plot's path; ``evals.report.sweep`` adds it when any run spent expert time (``cost.human_s``).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.ticker import FuncFormatter

from evals.analysis.effort import (
    Budget,
    Gain,
    Point,
    at_budgets,
    budgets,
    curves,
    expert_arms,
    gains,
    verdict,
)
from evals.analysis.formatting import ci, fmt_n
from evals.analysis.frontier import Prices, expert_frontier, frontier
from evals.analysis.records import ArmSource, ExpertWork
from evals.analysis.uncertainty import Interval, Replicates
from evals.report import plots


def has_expert_time(runs) -> bool:
    return any(r.cost.human_s > 0 for r in runs)


def _labels(points: Mapping[str, list[Point]], arms_meta: Mapping[str, ArmSource]) -> dict[str, str]:
    out = {}
    for arm in points:
        if arm not in arms_meta:
            out[arm] = arm
            continue
        source, fraction = arms_meta[arm].human, arms_meta[arm].fraction
        kind = ("raw synthetic" if fraction == 1
                else f"{source}" + (f" + synthetic f={fraction:g}" if fraction else ""))
        if objective := arms_meta[arm].objective:  # an SFT-then-preference arm
            kind += f" -> SFT -> {objective.upper()}"
        if allocator := arms_meta[arm].allocator:  # drafts chosen by an allocator
            kind += f", allocator {allocator}"
        out[arm] = arm if kind == arm else f"{arm} ({kind})"
    return out


def plot(path: Path, points: Mapping[str, list[Point]], labels: Mapping[str, str], ceiling: float | None,
         title: str) -> Path:
    """Score vs expert hours (log x), one line per arm that spent expert time; zero-hour arms and
    the teacher as horizontal references."""
    colors = plots.arm_colors(list(points))
    fig, ax = plots._new_axes()
    for arm in expert_arms(points):
        pts = [p for p in points[arm] if p.hours > 0]
        x = [p.hours for p in pts]
        y = [100 * p.score.estimate for p in pts]
        err = [[100 * (p.score.estimate - p.score.lower) for p in pts],
               [100 * (p.score.upper - p.score.estimate) for p in pts]]
        ax.errorbar(x, y, yerr=err, color=colors[arm], marker="o", capsize=3, lw=1.6, label=labels[arm])
    for arm, pts in points.items():
        if arm not in expert_arms(points):
            best = max(pts, key=lambda p: p.score.estimate)
            ax.axhline(100 * best.score.estimate, color=colors[arm], ls=":", lw=1.4,
                       label=f"{labels[arm]}: 0 expert hours (best N={fmt_n(best.n)})")
    if ceiling is not None:
        ax.axhline(100 * ceiling, color="black", ls="--", lw=1.2,
                   label=f"teacher ceiling ({100 * ceiling:.1f})")
    ax.set_xscale("log")
    hours = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(hours)
    ax.xaxis.set_minor_formatter(hours)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("expert hours per run (each unique example's human seconds counted once; log scale)")
    ax.set_ylabel("score (points = accuracy %), 90% bootstrap intervals")
    ax.set_title(f"{title}: what an expert hour buys, per way of using it", fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    return plots._save(fig, path)


def _tables(points, budget_rows: list[Budget], gain_rows: list[Gain], labels) -> list[tuple]:
    curve = [[labels[a], fmt_n(p.n), f"{p.hours:.3g}", ci(p.score)]
             for a in points for p in points[a]]
    budget = [[f"{b.hours:g}", labels[b.arm], f"N={fmt_n(b.point.n)} ({b.point.hours:.3g} h)",
               ci(b.point.score),
               labels.get(b.runner_up, "–") if b.runner_up else "–", ci(b.lead),
               "yes" if b.within_noise else "no"] for b in budget_rows]
    gain = [[labels[g.arm], fmt_n(g.n), f"{g.hours:.3g}", ci(g.over_raw, scale=1.0, signed=True),
             ci(g.marginal, scale=1.0, signed=True), "yes" if g.over_raw_within_noise else "no"]
            for g in gain_rows]
    return [("h", 3, "Score vs expert hours per arm"),
            ("table", ["arm", "N", "expert hours per run", "score (points) [CI]"], curve),
            ("h", 3, "Best arm at a budget of expert hours"),
            ("table", ["budget (h)", "best arm", "its point", "score [CI]", "runner-up", "lead (points) [CI]",
                       "within noise"], budget),
            ("h", 3, "Gain per expert hour"),
            ("table",
             ["arm", "N", "expert hours", "over raw drafts (points/h) [CI]",
              "from previous N (points/h) [CI]",
                       "over-raw within noise"], gain)]


def section(reps: Replicates, *, level: float, arms_meta: Mapping[str, ArmSource], ceiling: float | None,
            out_dir: Path, title: str, expert_hour: float = 0.0, currency: str = "USD",
            experts: Mapping[str, ExpertWork] | None = None) -> tuple[list[tuple], dict, Path]:
    points = curves(reps, level)
    labels = _labels(points, arms_meta)
    budget_rows = at_budgets(points, budgets(points), reps, level)
    gain_rows = gains(points, reps, level)
    text = verdict(budget_rows, gain_rows, labels)
    figure = plot(out_dir / "effort.png", points, labels, ceiling, title)
    who = "; ".join(f"{p}: {w.expert}{' (SIMULATED expert, not people)' if w.simulated else ''}"
                    for p, w in (experts or {}).items())
    simulated = f"Who did the work: {who}." if who else ""
    notes = ("Expert time is the human-time ledger: each unique example's human seconds, counted "
             "once per run "
             f"however many epochs repeat it. An expert hour is priced at {expert_hour:g} {currency}. "
             f"Intervals: {round(100 * level)}% paired bootstrap over seeds and eval items; a lead "
             "whose interval "
             f"includes 0 is within noise. {simulated}".strip())
    axis = expert_frontier(frontier(reps.runs, Prices()))
    front = [[labels.get(m.arm, m.arm), fmt_n(m.n), f"{m.human_hours:.3g}", f"{100 * m.score:.1f}"]
             for m in axis]
    blocks = [("h", 2, "Human effort: score per expert hour"), ("p", text),
              ("img", "score vs expert hours", figure), *_tables(points, budget_rows, gain_rows, labels),
              ("h", 3, "Expert-hour frontier (no mix scores as well for fewer expert hours)"),
              ("table", ["arm", "N", "expert hours per run", "mean score (points)"], front), ("p", notes)]
    summary = {"verdict": text,
               "budgets": [{"hours": b.hours, "arm": b.arm, "n": b.point.n, "score": _plain(b.point.score),
                            "runner_up": b.runner_up, "lead": _plain(b.lead), "within_noise": b.within_noise}
                           for b in budget_rows],
               "gains": [{"arm": g.arm, "n": g.n, "hours": g.hours, "over_raw_per_hour": _plain(g.over_raw),
                          "marginal_per_hour": _plain(g.marginal)} for g in gain_rows],
               "points": [{"arm": p.arm, "n": p.n, "hours": p.hours, "score": _plain(p.score)}
                          for pts in points.values() for p in pts],
               "frontier": [{"arm": m.arm, "n": m.n, "hours": m.human_hours, "score": m.score} for m in axis]}
    return blocks, summary, figure


def _plain(iv: Interval | None) -> dict | None:
    return (None if iv is None
            else {"estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper, "level": iv.level})
