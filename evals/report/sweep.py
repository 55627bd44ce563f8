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
and PNGs.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from distill.artifacts import atomic_write_json, atomic_write_text, stable_hash
from distill.recipe.schema import Report
from evals.analysis.checks import claims
from evals.analysis.formatting import ci, fmt_n, number
from evals.analysis.frontier import Frontier, Prices, frontier, recommend
from evals.analysis.paired import recipe_detectable
from evals.analysis.records import Reference, RunRecord, SweepRecords
from evals.analysis.saturation import RunScore, as_runs, compare_fits, fit_power, fit_rectified
from evals.analysis.uncertainty import Analysis, Interval, analyze
from evals.analysis.verdict import claims_verdict
from evals.report import effort_report, forecast_report, plots, signals_report, verifier_report
from evals.report import precision_report as precision
from evals.report.render import to_html, to_markdown

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


def _score(ref: Reference | None) -> float | None:
    return None if ref is None else float(ref.score)


def _plain(iv: Interval | None) -> dict | None:
    return (None if iv is None
            else {"estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper, "level": iv.level})


# ----------------------------------------------------------------------------- tables
def fit_rows(result: Analysis, runs: Sequence) -> list[dict]:
    """One row per arm: the power-law fit with intervals, PGR, and which law AICc prefers."""
    rows = []
    for arm, s in result.summaries.items():
        mine = [r for r in runs if r.arm == arm]
        n, y = [r.n for r in mine], [r.score for r in mine]
        law = compare_fits(fit_power(n, y), fit_rectified(n, y))
        rows.append({"arm": arm, "fraction": s.fraction, "runs": len(mine), "n_min": s.n_range[0],
                     "n_max": s.n_range[1], "form": s.form, "fit_ok": s.fit.ok, "note": s.fit.note,
                     "y_inf": _plain(s.y_inf), "exponent": _plain(s.exponent), "n_sat": _plain(s.n_sat),
                     "pgr_inf": _plain(s.pgr_inf), "teacher_gap": _plain(s.teacher_gap),
                     "better_law": law.preferred, "delta_aicc": law.delta_aicc, "law_strength": law.strength,
                     "not_identified": list(s.unidentified)})
    return rows


def _fits_table(result: Analysis, rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["arm", "f", "runs", "N range", "y∞ (points) [CI]", "α [CI]", "N_sat [CI]", "PGR∞ [CI]",
            "teacher − y∞ (points)", "better law (ΔAICc)"]
    body = []
    for row in rows:
        s = result.summaries[row["arm"]]
        law = ("–" if row["better_law"] is None
               else f"{row['better_law']} ({row['delta_aicc']:.1f}, {row['law_strength']})")
        def shown(name: str, text: str, s=s) -> str:
            return text if s.identified(name) else "not identified"

        body.append([row["arm"], f"{s.fraction:g}", str(row["runs"]),
                     f"{fmt_n(s.n_range[0])}–{fmt_n(s.n_range[1])}",
                     shown("y_inf", ci(s.y_inf)), shown("exponent", ci(s.exponent, scale=1.0, digits=2)),
                     shown("n_sat", ci(s.n_sat, fmt=fmt_n)),
                     shown("pgr_inf", ci(s.pgr_inf, digits=0, suffix="%")),
                     shown("teacher_gap", ci(s.teacher_gap)), law if s.fit.ok else f"no fit: {s.fit.note}"])
    return head, body


def _best_table(result: Analysis) -> tuple[list[str], list[list[str]]]:
    head = ["N", "best arm (f)", "score [CI]", "runner-up", "lead [CI]", "within seed noise",
            "replicates best"]
    body = [[fmt_n(b.n), f"{b.arm} ({b.fraction:g})", ci(b.score), b.runner_up or "–", ci(b.diff),
             "yes" if b.within_noise else "no", number(b.share_best, digits=0, suffix="%")]
            for b in result.best]
    return head, body


def _frontier_blocks(front: Frontier, currency: str) -> list[tuple]:
    rows = [[p.arm, f"{p.fraction:g}", fmt_n(p.n), f"{p.cost:,.2f}", number(p.score), str(len(p.scores))]
            for p in front.pareto]
    why = ("Mixes on the cost frontier: no cheaper mix scores higher. Human data and expert time are priced "
           "from counts; compute from measured wall time (device-seconds at `report.costs.device_hour`), so "
           "this section alone differs between two runs of the same recipe.")
    blocks: list[tuple] = [("p", why),
                           ("table", ["arm", "f", "N", f"cost per run ({currency})", "mean score", "seeds"],
                            rows)]
    rec = recommend(front, math.inf)
    if rec is not None:
        text = f"Best mean score: {rec.mix.arm} at N={fmt_n(rec.mix.n)} ({number(rec.mix.score)} points, " \
               f"{rec.mix.cost:,.2f} {currency} per run)."
        if rec.cheapest_equivalent is not rec.mix:
            eq = rec.cheapest_equivalent
            text += f" {eq.arm} at N={fmt_n(eq.n)} is within seed noise of it for {eq.cost:,.2f} {currency}."
        blocks.append(("p", text))
    return blocks


# ----------------------------------------------------------------------------- the report
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
    ceiling, floor = _score(sweep.ceiling), _score(sweep.floor)
    progress = tqdm(total=5, desc="report", unit="step", postfix=f"bootstrap x{cfg.bootstrap}")
    result = analyze(runs, ceiling=sweep.ceiling, floor=sweep.floor, n_boot=cfg.bootstrap,
                     level=cfg.confidence,
                     eps=cfg.epsilon, seed=seed, seed_pool=SEED_POOL[cfg.seed_noise])
    progress.update()
    progress.set_postfix_str("law comparison")
    rows = fit_rows(result, runs)
    found = claims(result, level=cfg.confidence, pool=sweep.human_pool, score=precision.EXACT,
                   checks=sweep.checks)
    text = claims_verdict(list(result.summaries.values()), result.best, result.crossovers, found)
    front = frontier(runs, prices(cfg))
    progress.update()
    arms = list(dict.fromkeys([r.arm for r in runs] + [r.arm for r in infeasible]))
    figs = {}
    for name, draw in (("curves",
                        lambda p: plots.curves(p, result.summaries, runs, infeasible, ceiling=ceiling,
                                                         floor=floor, human_pool=sweep.human_pool,
                                                         unit=sweep.unit,
                                                         title=sweep.name)),
                       ("heatmap",
                        lambda p: plots.heatmap(p, runs, infeasible, unit=sweep.unit, title=sweep.name)),
                       ("frontier", lambda p: plots.frontier_plot(p, front, arms, currency=cfg.costs.currency,
                                                                  title=sweep.name))):
        progress.set_postfix_str(f"plot {name}")
        figs[name] = draw(out_dir / f"{name}.png")
        progress.update()
    blocks = _blocks(sweep, result, rows, text, front, figs, infeasible, cfg)
    forecast_blocks, forecast = forecast_report.section(result, cfg.confidence, cfg.costs)
    blocks += forecast_blocks
    blocks += (precision.comparison_blocks(found) + precision.noise_blocks(found)
               + precision.convergence_blocks(found))
    cont_blocks, continuous, fig = precision.continuous_section(sweep, cfg, out_dir, seed)
    blocks += cont_blocks
    if fig is not None:
        figs["curves_continuous"] = fig
    effort = None
    if effort_report.has_expert_time(runs):  # human-effort arms: score per expert hour (own module)
        extra, effort, figs["effort"] = effort_report.section(
            result.replicates, level=cfg.confidence, arms_meta=sweep.meta.arms, ceiling=ceiling,
            out_dir=out_dir, title=sweep.name, expert_hour=cfg.costs.expert_hour, currency=cfg.costs.currency,
            experts=sweep.meta.experts)
        blocks += extra
        arms = {name: a.dumped() for name, a in sweep.meta.arms.items()}
        extra, signals = signals_report.section(result.replicates, arms, cfg.confidence)
        blocks += extra
        effort["signals"] = signals
    verifier = None
    # step marks as a verifier (own module)
    if found_verifier := (sweep.meta.model_extra or {}).get("verifier"):
        extra, verifier = verifier_report.section(found_verifier, cfg.confidence)
        blocks += extra
    paths = {"markdown": atomic_write_text(out_dir / "report.md", to_markdown(blocks, out_dir))}
    if html_page:
        paths["html"] = atomic_write_text(out_dir / "report.html",
                                          to_html(blocks, f"distill report: {sweep.name}"))
    summary = _summary(sweep, result, rows, text, front, infeasible, cfg, seed)
    summary["claims"], summary["continuous"] = precision.claims_summary(found), continuous
    summary["forecast"] = forecast
    if effort is not None:
        summary["effort"] = effort
    if verifier is not None:
        summary["verifier"] = verifier
    paths["json"] = atomic_write_json(out_dir / "report.json", summary)
    progress.close()
    if tracker is not None:
        _track(tracker, rows, figs, summary)
    return {**summary, "paths": {k: str(v) for k, v in {**paths, **figs}.items()}}


def _blocks(sweep: SweepRecords, result: Analysis, rows: list[dict], text: str, front: Frontier, figs: dict,
            infeasible: list[RunRecord], cfg: Report) -> list[tuple]:
    reps = result.replicates
    seeds = sorted({r.seed for r in reps.runs})
    ceiling, floor = _score(sweep.ceiling), _score(sweep.floor)
    facts = [f"arms: {', '.join(dict.fromkeys(r.arm for r in sweep.runs))}",
             f"runs: {len(reps.runs)} feasible, {len(infeasible)} infeasible; seeds {seeds}",
             (f"human pool (data wall): {fmt_n(sweep.human_pool) if sweep.human_pool else 'not given'} "
              f"{sweep.unit}"),
             (f"teacher ceiling: {number(math.nan if ceiling is None else ceiling)} points; "
              f"untrained student: {number(math.nan if floor is None else floor)} points"),
             (f"bootstrap: {reps.scores.shape[0]} replicates over {' and '.join(reps.over)}, "
              f"{100 * cfg.confidence:.0f}%"
              f" intervals; saturation = under {100 * cfg.epsilon:g} point per doubling")]
    if (mdd := recipe_detectable(reps.runs, cfg.confidence)) is not None:
        facts.append(f"minimum detectable difference between two cells ({100 * mdd['level']:.0f}% two-sided, "
                     f"{100 * mdd['power']:.0f}% power): {number(mdd['with_seed_noise'])} points at "
                     f"{mdd['items']} test "
                     f"items and {mdd['seeds']} seeds per cell (median seed SD {number(mdd['seed_sd'])}; "
                     f"{number(mdd['items_only'])} from the items alone, at a score of 50, the worst case); "
                     "smaller differences this recipe cannot see. "
                     "Any two evaluations, paired: `distill compare RUN_DIR MODEL_A MODEL_B`")
    blocks: list[tuple] = [("h", 1, f"Data-wall report: {sweep.name}"), ("h", 2, "Verdict"), ("p", text),
                           ("list", facts), ("h", 2, "Score vs data size"),
                           ("img", "score vs N per arm", figs["curves"])]
    if infeasible:
        by_arm: dict[str, list[float]] = {}
        for r in infeasible:
            by_arm.setdefault(r.arm, []).append(r.n)
        stopped = ("; "
                   "".join(f"{arm}: N={', '.join(fmt_n(n) for n in sorted(set(ns)))}"
                           for arm, ns in by_arm.items()))
        blocks.append(("p", f"Infeasible (wall policy stop, more human data than the pool): {stopped}."))
    notes = ("Scores in points (accuracy %). N_sat: smallest N after which a doubling adds under "
             f"{100 * cfg.epsilon:g} point on the fitted curve (∞: not within 1e9). PGR∞: share of "
             "the gap from "
             "the untrained student to the teacher that the asymptote recovers. Better law: power vs "
             "rectified "
             "by AICc (< 2 indistinguishable).")
    blocks += [("h", 2, "Fits per arm (power law y = y∞ − A·N^−α)"), ("table", *_fits_table(result, rows)),
               ("p", notes), ("h", 2, "Best mix per N"), ("table", *_best_table(result)),
               ("img", "mean score by mix", figs["heatmap"])]
    if result.crossovers:
        blocks += [("h", 2, "Crossovers"), ("list", [
            (f"{c.leader} overtakes {c.trailer} at N≈{ci(c.n, fmt=fmt_n)}; "
             f"{number(c.share_crossing, digits=0, suffix='%')} of replicates cross in range; per-N means "
             f"{'agree' if c.data_agrees else 'do not clearly agree'}") for c in result.crossovers])]
    blocks += [("h", 2, "Cost frontier"), *_frontier_blocks(front, cfg.costs.currency),
               ("img", "cost frontier", figs["frontier"])]
    return blocks


def _summary(sweep: SweepRecords, result: Analysis, rows: list[dict], text: str, front: Frontier,
             infeasible: list[RunRecord], cfg: Report, seed: int) -> dict:
    best = [{"n": b.n, "arm": b.arm, "fraction": b.fraction, "score": _plain(b.score),
             "runner_up": b.runner_up,
             "diff": _plain(b.diff), "within_noise": b.within_noise, "share_best": b.share_best}
             for b in result.best]
    cross = [{"leader": c.leader, "trailer": c.trailer, "n": _plain(c.n), "share_crossing": c.share_crossing,
              "data_agrees": c.data_agrees} for c in result.crossovers]
    pareto = [{"arm": p.arm, "fraction": p.fraction, "n": p.n, "cost": p.cost, "score": p.score}
              for p in front.pareto]
    given = sweep.dumped()  # the records as written: report.json copies their meta and hashes them
    return {"name": sweep.name, "meta": given.get("meta", {}), "verdict": text,
            "min_detectable": recipe_detectable(result.replicates.runs, cfg.confidence), "fits": rows,
            "best_per_n": best, "crossovers": cross,
            "pareto": pareto,
            "infeasible": [{"arm": r.arm, "fraction": r.fraction, "n": r.n, "seed": r.seed}
                           for r in infeasible],
            "settings": {**cfg.model_dump(), "seed": seed, "resampled_over": list(result.replicates.over)},
            "inputs": stable_hash([given["runs"], given.get("ceiling"), given.get("floor"), sweep.human_pool,
                                   sweep.unit])}


def _track(tracker: Any, rows: list[dict], figs: dict, summary: dict) -> None:
    flat = [{"arm": r["arm"], "fraction": r["fraction"], "runs": r["runs"], "form": r["form"],
             **{f"{k}_{part}": (r[k] or {}).get(part) for k in ("y_inf", "exponent", "n_sat", "pgr_inf")
                for part in ("estimate", "lower", "upper")}, "better_law": r["better_law"]} for r in rows]
    tracker.log_table("fits", flat)
    tracker.log_images({f"report/{k}": v for k, v in figs.items()})
    scalars = {f"{r['arm']}/{k}": r[k]["estimate"] for r in rows for k in ("y_inf", "n_sat")
               if r[k] is not None and np.isfinite(r[k]["estimate"])}
    tracker.summary({"verdict": summary["verdict"], **scalars})
