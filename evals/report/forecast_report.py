"""The report's forecast section: leave-top-out backtests, and forecasts past the largest N.

Forecasts at 2x and 10x an arm's largest N carry two intervals side by side: the bootstrap one (seed
and item noise only, which covers noise, not a wrong curve) and the one widened by the backtests'
split-conformal factor (``evals.analysis.backtest``). Nominal level and observed backtest coverage are
printed together; under 80% observed, the section calls the forecasts unreliable.
"""
from __future__ import annotations

import numpy as np

from evals.analysis.backtest import Backtest, backtest
from evals.analysis.formatting import ci, number
from evals.analysis.uncertainty import Analysis, Interval, clipped, curve_reps, interval
from evals.report import worth_report

FACTORS = (2, 10)
UNRELIABLE = 0.8  # observed coverage below this: the forecasts are called unreliable


def forecasts(result: Analysis, bt: Backtest, level: float) -> list[dict]:
    out = []
    for arm, ab in result.arms.items():
        if not ab.fit.ok:
            continue
        at = ab.ns[-1] * np.array(FACTORS, dtype=float)
        reps, point = curve_reps(ab, at), ab.fit.predict(at)
        for k, n in enumerate(at):
            boot = clipped(interval(reps[:, k], float(point[k]), level, result.replicates.dof([arm])))
            lo, hi = point[k] - boot.lower, boot.upper - point[k]
            wide = clipped(Interval(boot.estimate, point[k] - bt.widen * lo, point[k] + bt.widen * hi, level))
            out.append({"arm": arm, "n": float(n), "factor": FACTORS[k], "bootstrap": boot, "widened": wide,
                        "forecastable": bt.forecastable.get(arm, False)})
    return out


def section(result: Analysis, level: float, costs=None) -> tuple[list[tuple], dict | None]:
    bt = backtest(result.replicates, result.arms, level)
    if bt is None:
        why = ("No backtest: no arm has 4 or more sizes, so nothing says how far its curve may be "
               "trusted past "
               "its largest N; no forecast is made.")
        return [("h", 2, "Forecasts"), ("p", why)], None
    rows = [[h.arm, f"top {h.dropped}", f"{h.n:g}", number(h.measured), ci(h.forecast), number(h.error),
             "yes" if h.covered else "no"] for h in bt.held]
    verdict = (f"Backtest over {len(bt.held)} held-out rungs: mean absolute error "
               f"{number(bt.mean_error)} points; "
               f"coverage {100 * bt.coverage:.0f}% observed at {100 * level:.0f}% nominal; decision "
               "(best arm at "
               f"the held-out top rung) right in {sum(f == m for *_, f, m in bt.decisions)} of "
               f"{len(bt.decisions)}.")
    if bt.coverage < UNRELIABLE:
        verdict += f" Coverage is under {100 * UNRELIABLE:.0f}%: these forecasts are unreliable."
    widen = (f"Forecast intervals past the largest N are the bootstrap ones widened ×{bt.widen:.2f} "
             "(split-conformal on the backtest misses" + ("" if bt.calibrated else
             f"; only {len(bt.held)} residuals, fewer than a {100 * level:.0f}% conformal rank needs, so the "
             "largest miss sets it and coverage is not guaranteed") + ").")
    fc = forecasts(result, bt, level)
    frows = [[f["arm"], f"{f['factor']}× = {f['n']:g}", ci(f["bootstrap"]),
              ci(f["widened"]) if f["forecastable"] else "not forecastable"] for f in fc]
    blocks = [("h", 2, "Forecasts and their backtest"), ("p", verdict),
              ("table", ["arm", "left out", "N", "measured", f"forecast [{100 * level:.0f}% CI]", "error",
                         "covered"], rows),
              ("p", widen),
              ("table", ["arm", "N", "bootstrap forecast [CI]", "widened forecast [CI]"], frows)]
    plain = lambda iv: {"estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper}
    summary = {"nominal": level, "coverage": bt.coverage, "mean_error": bt.mean_error,
               "decision_accuracy": bt.decision_accuracy, "widen": bt.widen, "calibrated": bt.calibrated,
               "reliable": bt.coverage >= UNRELIABLE, "forecastable": dict(bt.forecastable),
               "held": [{"arm": h.arm, "dropped": h.dropped, "n": h.n, "measured": h.measured,
                         "forecast": plain(h.forecast), "covered": h.covered} for h in bt.held],
               "forecasts": [{**f, "bootstrap": plain(f["bootstrap"]), "widened": plain(f["widened"])}
                             for f in fc]}
    if costs is not None:
        extra, summary["worth"] = worth_report.blocks(result, fc, costs)
        blocks += extra
    return blocks, summary
