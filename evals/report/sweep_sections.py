"""The data-wall report's sections, in report order, and its three plots.

Each section reads the analysed sweep (``Context``) and returns its ``Part``: markdown blocks, report.json
fields and any figure it drew itself. ``evals.report.sweep.write_report`` analyses, draws ``PLOTS``, then
joins ``SECTIONS``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distill.artifacts import stable_hash
from distill.recipe.schema import Report
from evals.analysis.checks import Claims
from evals.analysis.formatting import ci, fmt_n, number
from evals.analysis.frontier import Frontier, recommend
from evals.analysis.paired import recipe_detectable
from evals.analysis.records import Reference, RunRecord, SweepRecords
from evals.analysis.saturation import RunScore, compare_fits, fit_power, fit_rectified
from evals.analysis.uncertainty import Analysis, Interval
from evals.report import effort_report, forecast_report, plots, signals_report, verifier_report
from evals.report import precision_report as precision


@dataclass
class Context:
    """A sweep, its analysis and the figures drawn so far: what every section reads."""
    sweep: SweepRecords
    cfg: Report
    out_dir: Path
    seed: int
    runs: list[RunScore]
    infeasible: list[RunRecord]
    result: Analysis
    rows: list[dict]  # fit_rows: one per arm
    found: Claims
    verdict: str
    front: Frontier
    figs: dict[str, Path] = field(default_factory=dict)

    @property
    def ceiling(self) -> float | None:
        return _score(self.sweep.ceiling)

    @property
    def floor(self) -> float | None:
        return _score(self.sweep.floor)


@dataclass
class Part:
    """One section's share of the report: markdown blocks, report.json fields, figures it drew."""
    blocks: list[tuple] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    figs: dict[str, Path] = field(default_factory=dict)


def _score(ref: Reference | None) -> float | None:
    return None if ref is None else float(ref.score)


def _plain(iv: Interval | None) -> dict | None:
    return (None if iv is None
            else {"estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper, "level": iv.level})


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


# ----------------------------------------------------------------------------- plots
def curves_plot(ctx: Context, path: Path) -> Path:
    return plots.curves(path, ctx.result.summaries, ctx.runs, ctx.infeasible, ceiling=ctx.ceiling,
                        floor=ctx.floor, human_pool=ctx.sweep.human_pool, unit=ctx.sweep.unit,
                        title=ctx.sweep.name)


def heatmap_plot(ctx: Context, path: Path) -> Path:
    return plots.heatmap(path, ctx.runs, ctx.infeasible, unit=ctx.sweep.unit, title=ctx.sweep.name)


def frontier_plot(ctx: Context, path: Path) -> Path:
    arms = list(dict.fromkeys([r.arm for r in ctx.runs] + [r.arm for r in ctx.infeasible]))
    return plots.frontier_plot(path, ctx.front, arms, currency=ctx.cfg.costs.currency, title=ctx.sweep.name)


PLOTS: tuple[tuple[str, Callable[[Context, Path], Path]], ...] = (
    ("curves", curves_plot), ("heatmap", heatmap_plot), ("frontier", frontier_plot))


# ----------------------------------------------------------------------------- sections
def overview(ctx: Context) -> Part:
    """Title, verdict, the sweep's facts and the score-vs-N plot; report.json's identity and settings."""
    sweep, cfg, infeasible = ctx.sweep, ctx.cfg, ctx.infeasible
    blocks: list[tuple] = [("h", 1, f"Data-wall report: {sweep.name}"), ("h", 2, "Verdict"),
                           ("p", ctx.verdict), ("list", _facts(ctx)), ("h", 2, "Score vs data size"),
                           ("img", "score vs N per arm", ctx.figs["curves"])]
    if infeasible:
        by_arm: dict[str, list[float]] = {}
        for r in infeasible:
            by_arm.setdefault(r.arm, []).append(r.n)
        stopped = "; ".join(f"{arm}: N={', '.join(fmt_n(n) for n in sorted(set(ns)))}"
                            for arm, ns in by_arm.items())
        blocks.append(("p", f"Infeasible (wall policy stop, more human data than the pool): {stopped}."))
    given = sweep.dumped()  # the records as written: report.json copies their meta and hashes them
    summary = {"name": sweep.name, "meta": given.get("meta", {}), "verdict": ctx.verdict,
               "min_detectable": recipe_detectable(ctx.result.replicates.runs, cfg.confidence),
               "infeasible": [{"arm": r.arm, "fraction": r.fraction, "n": r.n, "seed": r.seed}
                              for r in infeasible],
               "settings": {**cfg.model_dump(), "seed": ctx.seed,
                            "resampled_over": list(ctx.result.replicates.over)},
               "inputs": stable_hash([given["runs"], given.get("ceiling"), given.get("floor"),
                                      sweep.human_pool, sweep.unit])}
    return Part(blocks, summary)


def _facts(ctx: Context) -> list[str]:
    sweep, cfg, reps = ctx.sweep, ctx.cfg, ctx.result.replicates
    seeds = sorted({r.seed for r in reps.runs})
    ceiling, floor = ctx.ceiling, ctx.floor
    facts = [f"arms: {', '.join(dict.fromkeys(r.arm for r in sweep.runs))}",
             f"runs: {len(reps.runs)} feasible, {len(ctx.infeasible)} infeasible; seeds {seeds}",
             (f"human pool (data wall): {fmt_n(sweep.human_pool) if sweep.human_pool else 'not given'} "
              f"{sweep.unit}"),
             (f"teacher ceiling: {number(math.nan if ceiling is None else ceiling)} points; "
              f"untrained student: {number(math.nan if floor is None else floor)} points"),
             (f"bootstrap: {reps.scores.shape[0]} replicates over {' and '.join(reps.over)}, "
              f"{100 * cfg.confidence:.0f}% intervals; saturation = under {100 * cfg.epsilon:g} point per "
              "doubling")]
    if (mdd := recipe_detectable(reps.runs, cfg.confidence)) is not None:
        facts.append(f"minimum detectable difference between two cells ({100 * mdd['level']:.0f}% two-sided, "
                     f"{100 * mdd['power']:.0f}% power): {number(mdd['with_seed_noise'])} points at "
                     f"{mdd['items']} test items and {mdd['seeds']} seeds per cell (median seed SD "
                     f"{number(mdd['seed_sd'])}; {number(mdd['items_only'])} from the items alone, at a "
                     "score of 50, the worst case); smaller differences this recipe cannot see. "
                     "Any two evaluations, paired: `distill compare RUN_DIR MODEL_A MODEL_B`")
    return facts


def fits(ctx: Context) -> Part:
    """The power-law fit per arm."""
    head = ["arm", "f", "runs", "N range", "y∞ (points) [CI]", "α [CI]", "N_sat [CI]", "PGR∞ [CI]",
            "teacher − y∞ (points)", "better law (ΔAICc)"]
    body = []
    for row in ctx.rows:
        s = ctx.result.summaries[row["arm"]]
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
    notes = ("Scores in points (accuracy %). N_sat: smallest N after which a doubling adds under "
             f"{100 * ctx.cfg.epsilon:g} point on the fitted curve (∞: not within 1e9). PGR∞: share of the "
             "gap from the untrained student to the teacher that the asymptote recovers. Better law: power "
             "vs rectified by AICc (< 2 indistinguishable).")
    return Part([("h", 2, "Fits per arm (power law y = y∞ − A·N^−α)"), ("table", head, body), ("p", notes)],
                {"fits": ctx.rows})


def best_per_n(ctx: Context) -> Part:
    """The best mix at each N and the heatmap of mean scores."""
    best = ctx.result.best
    head = ["N", "best arm (f)", "score [CI]", "runner-up", "lead [CI]", "within seed noise",
            "replicates best"]
    body = [[fmt_n(b.n), f"{b.arm} ({b.fraction:g})", ci(b.score), b.runner_up or "–", ci(b.diff),
             "yes" if b.within_noise else "no", number(b.share_best, digits=0, suffix="%")] for b in best]
    summary = [{"n": b.n, "arm": b.arm, "fraction": b.fraction, "score": _plain(b.score),
                "runner_up": b.runner_up, "diff": _plain(b.diff), "within_noise": b.within_noise,
                "share_best": b.share_best} for b in best]
    return Part([("h", 2, "Best mix per N"), ("table", head, body),
                 ("img", "mean score by mix", ctx.figs["heatmap"])], {"best_per_n": summary})


def crossovers(ctx: Context) -> Part:
    """Where one arm overtakes another (a section only when some does)."""
    found = ctx.result.crossovers
    said = [(f"{c.leader} overtakes {c.trailer} at N≈{ci(c.n, fmt=fmt_n)}; "
             f"{number(c.share_crossing, digits=0, suffix='%')} of replicates cross in range; per-N means "
             f"{'agree' if c.data_agrees else 'do not clearly agree'}") for c in found]
    summary = [{"leader": c.leader, "trailer": c.trailer, "n": _plain(c.n),
                "share_crossing": c.share_crossing, "data_agrees": c.data_agrees} for c in found]
    return Part([("h", 2, "Crossovers"), ("list", said)] if found else [], {"crossovers": summary})


def cost_frontier(ctx: Context) -> Part:
    """The mixes no cheaper mix beats, and the cheapest one within noise of the best."""
    front, currency = ctx.front, ctx.cfg.costs.currency
    rows = [[p.arm, f"{p.fraction:g}", fmt_n(p.n), f"{p.cost:,.2f}", number(p.score), str(len(p.scores))]
            for p in front.pareto]
    why = ("Mixes on the cost frontier: no cheaper mix scores higher. Human data and expert time are priced "
           "from counts; compute from measured wall time (device-seconds at `report.costs.device_hour`), so "
           "this section alone differs between two runs of the same recipe.")
    blocks: list[tuple] = [("h", 2, "Cost frontier"), ("p", why),
                           ("table", ["arm", "f", "N", f"cost per run ({currency})", "mean score", "seeds"],
                            rows)]
    rec = recommend(front, math.inf)
    if rec is not None:
        text = (f"Best mean score: {rec.mix.arm} at N={fmt_n(rec.mix.n)} ({number(rec.mix.score)} points, "
                f"{rec.mix.cost:,.2f} {currency} per run).")
        if rec.cheapest_equivalent is not rec.mix:
            eq = rec.cheapest_equivalent
            text += f" {eq.arm} at N={fmt_n(eq.n)} is within seed noise of it for {eq.cost:,.2f} {currency}."
        blocks.append(("p", text))
    blocks.append(("img", "cost frontier", ctx.figs["frontier"]))
    pareto = [{"arm": p.arm, "fraction": p.fraction, "n": p.n, "cost": p.cost, "score": p.score}
              for p in front.pareto]
    return Part(blocks, {"pareto": pareto})


def forecasts(ctx: Context) -> Part:
    blocks, forecast = forecast_report.section(ctx.result, ctx.cfg.confidence, ctx.cfg.costs)
    return Part(blocks, {"forecast": forecast})


def claims(ctx: Context) -> Part:
    """Against the teacher, the human data wall, seed noise and the convergence check."""
    found = ctx.found
    blocks = (precision.comparison_blocks(found) + precision.noise_blocks(found)
              + precision.convergence_blocks(found))
    return Part(blocks, {"claims": precision.claims_summary(found)})


def continuous(ctx: Context) -> Part:
    blocks, summary, fig = precision.continuous_section(ctx.sweep, ctx.cfg, ctx.out_dir, ctx.seed)
    return Part(blocks, {"continuous": summary}, {} if fig is None else {"curves_continuous": fig})


def human_effort(ctx: Context) -> Part:
    """Score per expert hour and the expert signals, for sweeps with arms that spent expert time."""
    if not effort_report.has_expert_time(ctx.runs):
        return Part()
    sweep, cfg = ctx.sweep, ctx.cfg
    blocks, effort, fig = effort_report.section(
        ctx.result.replicates, level=cfg.confidence, arms_meta=sweep.meta.arms, ceiling=ctx.ceiling,
        out_dir=ctx.out_dir, title=sweep.name, expert_hour=cfg.costs.expert_hour, currency=cfg.costs.currency,
        experts=sweep.meta.experts)
    arms = {name: a.dumped() for name, a in sweep.meta.arms.items()}
    extra, effort["signals"] = signals_report.section(ctx.result.replicates, arms, cfg.confidence)
    return Part(blocks + extra, {"effort": effort}, {"effort": fig})


def verifier(ctx: Context) -> Part:
    """Step marks as a verifier, when the sweep's records carry the verifier step's results."""
    found = (ctx.sweep.meta.model_extra or {}).get("verifier")
    if not found:
        return Part()
    blocks, summary = verifier_report.section(found, ctx.cfg.confidence)
    return Part(blocks, {"verifier": summary})


SECTIONS: tuple[Callable[[Context], Part], ...] = (
    overview, fits, best_per_n, crossovers, cost_frontier, forecasts, claims, continuous, human_effort,
    verifier)
