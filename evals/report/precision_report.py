"""The report's precision sections: seed noise per cell, the convergence check, the teacher and wall
comparisons behind the verdict, and the same curves on the continuous score.

A run record may carry ``continuous: {name, score, items}`` beside its exact-match ``score``/``items``
(``evals.lmeval.continuous_record``); ceiling and floor likewise. The continuous analysis is the
exact-match analysis rerun on those values, with the same bootstrap and intervals.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from evals.analysis.checks import Claims, claims, outside
from evals.analysis.formatting import ci, fmt_n
from evals.analysis.records import Reference, RunRecord, SweepRecords
from evals.analysis.saturation import as_runs
from evals.analysis.uncertainty import Analysis, analyze
from evals.analysis.verdict import claims_verdict
from evals.report import plots

EXACT = "exact match of the final answer"
R = TypeVar("R", RunRecord, Reference)


def continuous_view(runs: Sequence[RunRecord], ceiling: Reference | None, floor: Reference | None
                    ) -> tuple[str, list[RunRecord], Reference | None, Reference | None] | None:
    """(score name, runs, ceiling, floor) with the continuous score in place of exact match, or None
    when a feasible run or a reference lacks one."""
    def swap(record: R) -> R | None:
        c = record.continuous
        return None if c is None else record.model_copy(update={"score": c.score, "items": c.items})

    feasible = [r for r in runs if r.feasible]
    swapped = [swap(r) for r in feasible]
    refs = [None if x is None else swap(x) for x in (ceiling, floor)]
    if not feasible or any(r is None for r in swapped) or any(x is not None and s is None
                                                               for x, s in zip((ceiling, floor), refs)):
        return None
    return feasible[0].continuous.name, swapped, refs[0], refs[1]


def _sd(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.1f}"


def noise_blocks(found: Claims) -> list[tuple]:
    cells = found.cells
    arms = list(dict.fromkeys(c.arm for c in cells))
    ns = sorted({c.n for c in cells})
    by = {(c.arm, c.n): c for c in cells}
    rows = [[fmt_n(n)] + [_sd(by[(a, n)].sd) if (a, n) in by else "" for a in arms] for n in ns]
    worst = max((c for c in cells if math.isfinite(c.sd)), key=lambda c: c.sd, default=None)
    largest = f"; largest: {_sd(worst.sd)} ({worst.arm}, N={fmt_n(worst.n)})." if worst else "."
    text = (f"Seed-to-seed standard deviation of each cell (points, {EXACT}). Median over cells: "
            f"{_sd(found.median_sd)}{largest}")
    return [("h", 2, "Seed noise"), ("p", text), ("table", ["N"] + arms, rows)]


def _converged_cell(c) -> str:
    if c.converged:
        return "yes"
    return "NO: undertrained" if c.undertrained else "NO: lower with more training"


def convergence_blocks(found: Claims) -> list[tuple]:
    if not found.convergence:
        why = ("Not run (report.convergence is off; `report.convergence.factor=2` on the command "
               "line adds it "
               "and reuses every finished step): nothing here says the students are trained to their "
               "data limit.")
        return [("h", 2, "Convergence check"), ("p", why)]
    rows = [[c.arm, fmt_n(c.n), f"{c.factor:g}x", str(c.seeds), f"{100 * c.shift:+.1f}", _sd(c.seed_sd),
             _sd(c.item_se), _converged_cell(c)] for c in found.convergence]
    head = ["arm", "N", "budget", "seeds", "score change (points)", "seed SD", "item SE", "converged"]
    how = ("Each arm's largest N retrained with a larger budget on the same data and seed; "
           "converged when the "
           "change is smaller than the cell's seed SD, or than one score's standard error over the "
           "test items "
           "when that is larger (seeds that agree exactly do not make a score exact).")
    return [("h", 2, "Convergence check"), ("p", how), ("table", head, rows)]


def comparison_blocks(found: Claims) -> list[tuple]:
    """The teacher and wall comparisons the verdict quotes, as tables."""
    blocks: list[tuple] = []
    if found.teacher:
        rows = [[c.arm, fmt_n(c.n), ci(c.diff, signed=True), "yes" if outside(c.diff) else "no",
                 ci(c.asymptote_gap, signed=True)
                 if c.asymptote_gap else "not identified", c.plateau] for c in found.teacher]
        blocks += [("h", 2, "Against the teacher"),
                   ("table", ["arm", "largest N", "mean − teacher (points) [CI]", "outside noise",
                              "y∞ − teacher [CI]", "plateau"], rows)]
    if found.walls:
        rows = [[w.arm, fmt_n(w.pool), ci(w.before, signed=True), ci(w.after, signed=True),
                 ci(w.drop, signed=True), "yes" if w.binds else "no"]
                for w in found.walls]
        blocks += [("h", 2, "The human data wall"),
                   ("table", ["arm", "pool", "gain/doubling up to pool", "gain/doubling past it", "drop [CI]",
                              "binds (outside noise)"], rows)]
    return blocks


def claims_summary(found: Claims) -> dict:
    iv = lambda i: None if i is None else {"estimate": i.estimate, "lower": i.lower, "upper": i.upper}
    return {"score": found.score, "median_seed_sd": found.median_sd,
            "cells": [{"arm": c.arm, "n": c.n, "seeds": c.seeds, "sd": c.sd} for c in found.cells],
            "teacher": [{"arm": c.arm, "n": c.n, "diff": iv(c.diff), "asymptote_gap": iv(c.asymptote_gap),
                         "plateau": c.plateau} for c in found.teacher],
            "walls": [{"arm": w.arm, "pool": w.pool, "before": iv(w.before), "after": iv(w.after),
                       "drop": iv(w.drop), "binds": w.binds} for w in found.walls],
            "convergence": [{"arm": c.arm, "n": c.n, "factor": c.factor, "seeds": c.seeds, "shift": c.shift,
                             "seed_sd": c.seed_sd, "item_se": c.item_se, "converged": c.converged}
                             for c in found.convergence]}


def continuous_section(sweep: SweepRecords, cfg, out_dir: Path,
                       seed: int) -> tuple[list, dict | None, Path | None]:
    """The curves, fits and claims again on the continuous score; ([], None, None) without one."""
    view = continuous_view(sweep.runs, sweep.ceiling, sweep.floor)
    if view is None:
        return [], None, None
    name, runs, ceiling, floor = view
    result: Analysis = analyze(as_runs(runs), ceiling=ceiling, floor=floor, n_boot=cfg.bootstrap,
                               level=cfg.confidence, eps=cfg.epsilon, seed=seed,
                               seed_pool={"cell": "n", "arm": "arm"}[cfg.seed_noise])
    found = claims(result, level=cfg.confidence, pool=sweep.human_pool, score=f"the continuous score, {name}")
    text = claims_verdict(list(result.summaries.values()), result.best, result.crossovers, found)
    fig = plots.curves(out_dir / "curves_continuous.png", result.summaries, result.replicates.runs, [],
                       ceiling=None if ceiling is None else ceiling.score,
                       floor=None if floor is None else floor.score, human_pool=sweep.human_pool,
                       unit=sweep.unit, title=f"{sweep.name}: {name}")
    blocks = [("h", 2, f"The same curves on a continuous score: {name}"),
              ("p", "Per item, the probability the model gives the whole reference solution (no generation, "
                    "no exact-match threshold); scores in points of probability. " + text),
              ("img", f"{name} vs N per arm", fig)] + comparison_blocks(found)
    return blocks, {"verdict": text, **claims_summary(found)}, fig
