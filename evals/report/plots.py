"""The report's figures (matplotlib, Agg, no pyplot state): score vs N per arm, f x N heatmap, cost frontier.

Scores are drawn in points (accuracy %, 0-100); N on a log2 axis in the sweep's unit (examples or
tokens). Each function takes analysis results (``evals.analysis.uncertainty`` / ``evals.analysis.frontier``)
and the run records, writes one PNG and returns its path.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: report jobs run on cluster nodes without a display
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from evals.analysis.formatting import fmt_n
from evals.analysis.frontier import Frontier
from evals.analysis.records import RunRecord
from evals.analysis.saturation import RunScore
from evals.analysis.uncertainty import ArmSummary

DPI = 130
_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    return {arm: _COLORS[i % len(_COLORS)] for i, arm in enumerate(arms)}


def _log2_x(ax, ns: Sequence[float], unit: str) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(ns))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_n(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(f"N, training set size ({unit}, log2 scale)")


def _references(ax, ceiling: float | None, floor: float | None, human_pool: float | None, unit: str) -> None:
    if ceiling is not None:
        ax.axhline(100 * ceiling, color="black", ls="--", lw=1.2,
                   label=f"teacher ceiling ({100 * ceiling:.1f})")
    if floor is not None:
        ax.axhline(100 * floor, color="grey", ls=":", lw=1.2, label=f"untrained student ({100 * floor:.1f})")
    if human_pool:
        ax.axvline(human_pool, color="firebrick", ls="-.", lw=1.2,
                   label=f"data wall: human pool H={fmt_n(human_pool)} {unit}")


def _new_axes(width: float = 8.5, height: float = 5.2):
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)  # atomic: a half-written PNG never carries the final name
    return path


def curves(path: Path, summaries: Mapping[str, ArmSummary], runs: Sequence[RunScore],
           infeasible: Sequence[RunRecord], *, ceiling: float | None, floor: float | None,
           human_pool: float | None, unit: str, title: str) -> Path:
    """Score vs N: seed points, per-N means, fitted curve with its bootstrap band, per arm."""
    arms = list(dict.fromkeys([r.arm for r in runs] + [r.arm for r in infeasible]))
    colors = arm_colors(arms)
    fig, ax = _new_axes(8.0, 6.4)
    for arm in arms:
        c, mine = colors[arm], [r for r in runs if r.arm == arm]
        if mine:
            ax.scatter([r.n for r in mine], [100 * r.score for r in mine], s=14, color=c, alpha=0.35,
                       linewidths=0)
        s = summaries.get(arm)
        if s is None:
            continue
        ns = [n for n, _ in s.means]
        ax.plot(ns, [100 * m.estimate for _, m in s.means], "o", color=c, ms=6, mec="white", mew=0.8)
        label = f"{arm} (f={s.fraction:g})"
        if s.fit.ok:
            ax.plot(s.band_n, 100 * s.fit.predict(s.band_n), color=c, lw=2, label=f"{label}: {s.form} fit")
            ok = np.isfinite(s.band_lower) & np.isfinite(s.band_upper)
            ax.fill_between(s.band_n[ok], 100 * s.band_lower[ok], 100 * s.band_upper[ok], color=c, alpha=0.15,
                            lw=0)
        else:
            ax.plot(ns, [100 * m.estimate for _, m in s.means], color=c, lw=1, ls="--",
                    label=f"{label}: no fit")
    _infeasible_marks(ax, infeasible, colors)
    _references(ax, ceiling, floor, human_pool, unit)
    all_n = [r.n for r in runs] + [r.n for r in infeasible]
    _log2_x(ax, all_n, unit)
    ax.set_ylabel("score (points = accuracy %)")
    level = next(iter(summaries.values())).y_inf.level if summaries else 0.9
    ax.set_title(f"{title}: score vs data size\n(small dots: seeds, circles: per-N means, "
                 f"bands: {100 * level:.0f}% bootstrap of the fit)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return _save(fig, path)


def _infeasible_marks(ax, infeasible: Sequence[RunRecord], colors: Mapping[str, str]) -> None:
    """Points the wall policy `stop` could not build: an x on the x axis, one row per arm, one legend
    entry."""
    if not infeasible:
        return
    trans = ax.get_xaxis_transform()  # x in data units, y in axes fraction: the marks sit on the axis
    rows = {arm: k for k, arm in enumerate(dict.fromkeys(r.arm for r in infeasible))}
    for arm, k in rows.items():
        ns = sorted({r.n for r in infeasible if r.arm == arm})
        ax.plot(ns, [0.03 + 0.045 * k] * len(ns), marker="x", ms=8, mew=2, color=colors.get(arm, "black"),
                transform=trans, clip_on=False, ls="none")
    ax.plot([], [], marker="x", ms=8, mew=2, color="black", ls="none",
            label="infeasible: beyond the human pool (wall: stop)")


def heatmap(path: Path, runs: Sequence[RunScore], infeasible: Sequence[RunRecord], *, unit: str,
            title: str) -> Path:
    """Mean score per (arm, N): rows are arms ordered by synthetic fraction f, columns N."""
    arms = sorted({(r.fraction, r.arm) for r in runs} | {(r.fraction, r.arm)
                                                          for r in infeasible}, key=lambda t: (t[0], t[1]))
    ns = sorted({r.n for r in runs} | {int(r.n) for r in infeasible})
    grid = np.full((len(arms), len(ns)), np.nan)
    for i, (_, arm) in enumerate(arms):
        for j, n in enumerate(ns):
            vals = [r.score for r in runs if r.arm == arm and r.n == n]
            grid[i, j] = 100 * np.mean(vals) if vals else np.nan
    stopped = {(r.arm, int(r.n)) for r in infeasible}
    fig, ax = _new_axes(max(5.0, 1.0 + 0.9 * len(ns)), max(2.8, 1.4 + 0.55 * len(arms)))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto", vmin=np.nanmin(grid),
                      vmax=np.nanmax(grid))
    ax.set_facecolor("#dddddd")
    mid = (np.nanmin(grid) + np.nanmax(grid)) / 2
    for i, (_, arm) in enumerate(arms):
        for j, n in enumerate(ns):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] < mid else "black")
            else:
                ax.text(j, i, "× stop" if (arm, n) in stopped else "–", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(ns)), [fmt_n(n) for n in ns])
    ax.set_yticks(range(len(arms)), [f"{arm} (f={f:g})" for f, arm in arms])
    ax.set_xlabel(f"N, training set size ({unit})")
    ax.set_ylabel("arm (synthetic fraction f)")
    ax.set_title(f"{title}: mean score by mix (points); grey = infeasible or not run", fontsize=10)
    fig.colorbar(image, ax=ax, label="mean score (points)")
    return _save(fig, path)


def frontier_plot(path: Path, front: Frontier, arms: Sequence[str], *, currency: str, title: str) -> Path:
    """Mean score vs cost per run for every mix; the Pareto frontier as a step line."""
    colors = arm_colors(arms)
    fig, ax = _new_axes()
    for arm in arms:
        pts = [p for p in front.points if p.arm == arm]
        if pts:
            ax.scatter([p.cost for p in pts], [100 * p.score for p in pts], color=colors[arm], s=30,
                       label=f"{arm} (f={pts[0].fraction:g})", zorder=3)
    if front.pareto:
        ax.step([p.cost for p in front.pareto], [100 * p.score for p in front.pareto], where="post",
                color="black",
                lw=1.2, alpha=0.7, label="Pareto frontier", zorder=2)
        for p in front.pareto:
            ax.annotate(f"{p.arm} N={fmt_n(p.n)}", (p.cost, 100 * p.score), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    costs = [p.cost for p in front.points if p.cost > 0]
    if costs and max(costs) / min(costs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(f"cost per run ({currency}: human examples + teacher, training and eval device time)")
    ax.set_ylabel("mean score (points = accuracy %)")
    ax.set_title(f"{title}: what each mix costs and scores", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
