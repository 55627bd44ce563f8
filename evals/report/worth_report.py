""""Is more worth it?": the next dollar on more teacher data against more human data.

For every arm, the forecast gain at 2x and 10x its largest N (the widened forecast interval minus the
measured mean at the largest N), the price of the extra data, and gain per dollar. Synthetic data is
priced at the teacher's measured device-seconds per example (``cost.teacher_s`` of the largest-N runs,
rejected samples included) times ``report.costs.device_hour``; human data at
``report.costs.human_per_example`` plus expert time (``cost.human_s`` per example at
``report.costs.expert_hour``). Training the larger student is not priced: every arm pays it alike.
The verdict names an arm only when its gain-per-dollar interval lies wholly above every other's;
otherwise, or when an arm is not forecastable, it says the forecast cannot tell.
"""
from __future__ import annotations

import math

import numpy as np

from evals.analysis.formatting import ci
from evals.analysis.uncertainty import Analysis


def _per_example(result: Analysis, arm: str, n: float, costs) -> float:
    runs = [r for r in result.replicates.runs if r.arm == arm and r.n == n and r.feasible]
    teacher_s = np.mean([r.cost.teacher_s for r in runs]) / n
    human = np.mean([r.cost.human for r in runs]) / n  # human examples per example
    expert_s = np.mean([r.cost.human_s for r in runs]) / n
    return float(teacher_s * costs.device_hour / 3600 + human * costs.human_per_example
                 + expert_s * costs.expert_hour / 3600)


def rows(result: Analysis, forecasts: list[dict], costs) -> list[dict]:
    out = []
    for f in forecasts:
        ab = result.arms[f["arm"]]
        top, mean = float(ab.ns[-1]), float(ab.means[-1])
        price = (f["n"] - top) * _per_example(result, f["arm"], top, costs)
        gain = (f["widened"].estimate - mean, f["widened"].lower - mean, f["widened"].upper - mean)
        per = tuple(g / price if price > 0 else math.nan for g in gain)
        out.append({"arm": f["arm"], "factor": f["factor"], "n": f["n"], "price": price, "gain": gain,
                    "per_dollar": per, "forecastable": f["forecastable"]})
    return out


def verdict(found: list[dict], factor: int, currency: str) -> str:
    at = [r for r in found if r["factor"] == factor]
    if len(at) < 2:
        return f"Is more worth it: fewer than two arms forecast at {factor}x; the forecast cannot tell."
    if not all(r["forecastable"] for r in at):
        bad = ", ".join(r["arm"] for r in at if not r["forecastable"])
        return f"Is more worth it at {factor}x: {bad} not forecastable; the forecast cannot tell."
    priced = [r for r in at if r["price"] > 0 and all(map(math.isfinite, r["per_dollar"]))]
    for r in priced:
        if (len(priced) == len(at)
            and all(r["per_dollar"][1] > o["per_dollar"][2] for o in priced if o is not r)):
            return (f"Is more worth it at {factor}x: the better next {currency} goes to {r['arm']} "
                    f"({100 * r['per_dollar'][0]:.3g} points per {currency}; its interval lies above every "
                    "other arm's).")
    return (f"Is more worth it at {factor}x: the gain-per-{currency} intervals overlap (or an arm's "
            "extra data "
            "has no measured price); the forecast cannot tell which next dollar is better.")


def blocks(result: Analysis, forecasts: list[dict], costs) -> tuple[list[tuple], dict]:
    found = rows(result, forecasts, costs)
    cur = costs.currency

    table = [[r["arm"], f"{r['factor']}× = {r['n']:g}",
              ci(r["gain"], signed=True) if r["forecastable"] else "not forecastable",
              f"{r['price']:,.2f}",
              ci(tuple(100 * x for x in r["per_dollar"]), signed=True) if r["forecastable"] else "–"]
             for r in found]
    texts = [verdict(found, k, cur) for k in (2, 10)]
    out = [("h", 2, "Is more worth it?"), ("p", " ".join(texts)),
           ("table", ["arm", "N", "gain over largest N (points) [CI]", f"extra data ({cur})",
                      f"points per 100 {cur} [CI]"], table)]
    return out, {"verdicts": texts, "rows": found}
