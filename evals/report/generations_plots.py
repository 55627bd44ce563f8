"""Figures of the generations and teachers reports (matplotlib, Agg, no pyplot state); scores in points."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from evals.report.plots import _new_axes, _save, arm_colors

_LABELS = {"distinct_ngrams": "distinct token n-grams (%)", "distinct_answers": "distinct final answers (%)"}


def _errorbar(ax, x, ivs, color: str, label: str) -> None:
    est = np.array([100 * i.estimate for i in ivs])
    lo = np.array([100 * i.lower for i in ivs])
    hi = np.array([100 * i.upper for i in ivs])
    yerr = np.vstack([np.clip(est - lo, 0, None), np.clip(hi - est, 0, None)])
    ax.errorbar(x, est, yerr=np.nan_to_num(yerr), color=color, marker="o", capsize=3, label=label)


def score_plot(path: Path, curves: Mapping, title: str) -> Path:
    fig, ax = _new_axes()
    colors = arm_colors(list(curves))
    for i, (policy, c) in enumerate(curves.items()):
        x = np.array(c.generations) + 0.06 * (i - (len(curves) - 1) / 2)  # side by side, bars do not hide
        _errorbar(ax, x, c.score, colors[policy], f"{policy} (slope {100 * c.slope.estimate:+.1f}/gen)")
    ax.set_xlabel("generation (0: trained on human data)")
    ax.set_ylabel("test score (points, human-distribution test split)")
    ax.set_title(f"{title}: score vs generation (bars: bootstrap intervals)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def diversity_plot(path: Path, curves: Mapping, title: str) -> Path:
    from matplotlib.figure import Figure

    from evals.report.plots import DPI

    fig = Figure(figsize=(11, 4.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2)
    colors = arm_colors(list(curves))
    for ax, key in zip(axes, _LABELS):
        for policy, c in curves.items():
            _errorbar(ax, np.array(c.generations), c.diversity[key], colors[policy], policy)
        ax.set_xlabel("generation")
        ax.set_ylabel(_LABELS[key])
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}: diversity of each generation's training data (bars: intervals over seeds)")
    return _save(fig, path)


def teachers_plot(path: Path, rows: Sequence[Mapping], title: str) -> Path:
    """Synthetic-only asymptote (with interval) against each teacher's accuracy; the diagonal is y = x."""
    fig, ax = _new_axes(7, 5.5)
    xs = [100 * r["ceiling"] for r in rows]
    for r in rows:
        iv = r["synthetic_y_inf"]
        if iv is None:
            continue
        est, lo, hi = (100 * iv[k] for k in ("estimate", "lower", "upper"))
        ax.errorbar([100 * r["ceiling"]], [est], yerr=[[max(est - lo, 0)], [max(hi - est, 0)]], marker="o",
                    capsize=3, label=f"{r['name']}")
    if xs:
        lo, hi = min(xs) - 5, max(xs) + 5
        ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=1, label="asymptote = teacher")
    ax.set_xlabel("teacher accuracy (points)")
    ax.set_ylabel("synthetic-only asymptote y∞ (points)")
    ax.set_title(f"{title}: does a better teacher raise the synthetic ceiling?")
    ax.legend(fontsize=8)
    return _save(fig, path)
