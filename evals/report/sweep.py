"""The data-wall report: fits, intervals, verdict and plots from a sweep's run records.

Input, one JSON file (``load_sweep``) or the same as a dict / ``SweepRecords`` (evals/analysis/records.py)::

    {"name": "arith-demo", "unit": "examples", "human_pool": 1000,
     "ceiling": {"score": 0.77, "items": [...]}, "floor": {"score": 0.0, "items": [...]},
     "runs": [{"arm": "human", "fraction": 0.0, "n": 500, "seed": 0, "score": 0.45,
               "items": [0, 1, ...], "feasible": true, "cost": {"human": 500, "train_s": 40}}, ...]}

``human_pool`` is in the unit of ``n``. Infeasible runs (wall policy ``stop``) may carry ``score: null``;
they are drawn as such and left out of every fit. ``ceiling``/``floor`` are a score or a record. The
analysis is ``evals.analysis.saturation`` / ``evals.analysis.uncertainty`` / ``evals.analysis.frontier``; this
module only arranges it into ``report.md`` (+ ``report.html`` with the images inlined), ``report.json``
and PNGs, section by section (``evals.report.sweep_sections``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.recipe.schema import Report
from evals.analysis.checks import claims
from evals.analysis.frontier import Prices, frontier
from evals.analysis.records import RunRecord, SweepRecords
from evals.analysis.saturation import RunScore, as_runs
from evals.analysis.uncertainty import analyze
from evals.analysis.verdict import claims_verdict
from evals.report import precision_report as precision
from evals.report.render import to_html, to_markdown
from evals.report.sweep_sections import PLOTS, SECTIONS, Context, fit_rows

SWEEP_FILE = "records.json"
SEED_POOL = {"cell": "n", "arm": "arm"}  # report.seed_noise -> uncertainty.resample(seed_pool=...)


def load_sweep(path: str | Path) -> SweepRecords:
    """A sweep's records from JSON (a file, or a folder holding ``records.json``)."""
    path = Path(path)
    path = path / SWEEP_FILE if path.is_dir() else path
    try:
        return SweepRecords.of(json.loads(path.read_text()))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err


def sweep_from(obj: SweepRecords | Mapping | str | Path) -> SweepRecords:
    return load_sweep(obj) if isinstance(obj, (str, Path)) else SweepRecords.of(obj)


def _split(sweep: SweepRecords) -> tuple[list[RunScore], list[RunRecord]]:
    if not sweep.feasible:
        raise ValueError("sweep records: no feasible run to analyse")
    return as_runs(sweep.feasible), sweep.infeasible


def prices(cfg: Report) -> Prices:
    per_s = cfg.costs.device_hour / 3600.0
    return Prices(teacher_device_s=per_s, human_example=cfg.costs.human_per_example, train_device_s=per_s,
                  eval_device_s=per_s, expert_s=cfg.costs.expert_hour / 3600.0)


def write_report(records: SweepRecords | Mapping | str | Path, out_dir: str | Path,
                 report_cfg: Report | None = None,
                 *, html_page: bool = True, tracker: Any = None, seed: int = 0) -> dict:
    """Analyse a sweep and write report.md (+ report.html), report.json and PNGs into ``out_dir``.

    ``tracker`` (``distill.tracking.Tracker``) also gets the fits table, the plots and the verdict.
    Returns report.json's content plus the written paths.
    """
    cfg, sweep, out_dir = report_cfg or Report(), sweep_from(records), Path(out_dir)
    runs, infeasible = _split(sweep)
    progress = tqdm(total=2 + len(PLOTS), desc="report", unit="step", postfix=f"bootstrap x{cfg.bootstrap}")
    ctx = _analyse(sweep, runs, infeasible, cfg, out_dir, seed, progress)
    for name, draw in PLOTS:
        progress.set_postfix_str(f"plot {name}")
        ctx.figs[name] = draw(ctx, out_dir / f"{name}.png")
        progress.update()
    blocks: list[tuple] = []
    summary: dict = {}
    for section in SECTIONS:
        part = section(ctx)
        blocks += part.blocks
        summary.update(part.summary)
        ctx.figs.update(part.figs)
    paths = {"markdown": atomic_write_text(out_dir / "report.md", to_markdown(blocks, out_dir))}
    if html_page:
        paths["html"] = atomic_write_text(out_dir / "report.html",
                                          to_html(blocks, f"distill report: {sweep.name}"))
    paths["json"] = atomic_write_json(out_dir / "report.json", summary)
    progress.close()
    if tracker is not None:
        _track(tracker, ctx.rows, ctx.figs, summary)
    return {**summary, "paths": {k: str(v) for k, v in {**paths, **ctx.figs}.items()}}


def _analyse(sweep: SweepRecords, runs: list[RunScore], infeasible: list[RunRecord], cfg: Report,
             out_dir: Path, seed: int, progress: Any) -> Context:
    """The bootstrap, the fits, the claims and their verdict, and the cost frontier: two progress steps."""
    result = analyze(runs, ceiling=sweep.ceiling, floor=sweep.floor, n_boot=cfg.bootstrap,
                     level=cfg.confidence, eps=cfg.epsilon, seed=seed, seed_pool=SEED_POOL[cfg.seed_noise])
    progress.update()
    progress.set_postfix_str("law comparison")
    rows = fit_rows(result, runs)
    found = claims(result, level=cfg.confidence, pool=sweep.human_pool, score=precision.EXACT,
                   checks=sweep.checks)
    text = claims_verdict(list(result.summaries.values()), result.best, result.crossovers, found)
    front = frontier(runs, prices(cfg))
    progress.update()
    return Context(sweep, cfg, out_dir, seed, runs, infeasible, result, rows, found, text, front)


def _track(tracker: Any, rows: list[dict], figs: dict, summary: dict) -> None:
    flat = [{"arm": r["arm"], "fraction": r["fraction"], "runs": r["runs"], "form": r["form"],
             **{f"{k}_{part}": (r[k] or {}).get(part) for k in ("y_inf", "exponent", "n_sat", "pgr_inf")
                for part in ("estimate", "lower", "upper")}, "better_law": r["better_law"]} for r in rows]
    tracker.log_table("fits", flat)
    tracker.log_images({f"report/{k}": v for k, v in figs.items()})
    scalars = {f"{r['arm']}/{k}": r[k]["estimate"] for r in rows for k in ("y_inf", "n_sat")
               if r[k] is not None and np.isfinite(r[k]["estimate"])}
    tracker.summary({"verdict": summary["verdict"], **scalars})
