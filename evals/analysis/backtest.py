"""Backtests of the learning-curve forecasts: refit without the top rungs, predict them, score it.

For every arm with at least ``MIN_SIZES`` measured sizes, the power law is refitted with the top rung,
and then the top two, left out (DataDecide's practice), and the top three where 3 sizes remain to fit
(on a 125 ... 8k ladder: fit on <= 1k, forecast 2k-8k), on the same paired replicates as the report.
Each held-out rung gets a forecast interval for its *measured* mean (itself a draw): percentiles of
the replicate misses, refitted curve minus the held-out cell's mean in the same replicate (paired, so
the test items both share cancel; expanded for few seeds like every other interval). On simulated
ladders (tests/unit/test_backtest.py) 90% intervals covered 99 of 100 top rungs and 190 of 200 when
two were held out: slightly conservative. Scored: absolute error, whether the interval covered the measured
mean, and the
decision "which arm is best at the held-out top rung" against the measured means.

Forecasts beyond the largest measured N are widened split-conformally: the calibration scores are the
backtest misses in units of their own interval half-width, |measured - forecast| / half; the widening
factor is their ceil((m + 1) * level)-th smallest value (at least 1). With fewer than 1 / (1 - level) - 1
residuals that rank does not exist and the factor is the largest residual ratio, flagged as
``calibrated=False`` (coverage not guaranteed). An arm is "not forecastable" when a refit fails or fewer
than half of its held-out rungs were covered (a 90% interval misses half only when the curve is wrong). Pure
numpy/scipy; no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evals.analysis.saturation import fit_batch, fit_power, predict_params
from evals.analysis.uncertainty import ArmBootstrap, Interval, Replicates, _upper_quantile, cell, clipped

MIN_SIZES = 4
MAX_DROP = (1, 2, 3)  # rungs left out, at most; a refit keeps at least 3 sizes (the power law's parameters)


def drops(sizes: int) -> list[int]:
    return [d for d in MAX_DROP if sizes - d >= 3]


@dataclass(frozen=True)
class Held:
    arm: str
    dropped: int  # 1: top rung left out; 2: top two; 3: top three
    n: float
    measured: float
    forecast: Interval  # for the measured mean at n, from the fit without it
    error: float  # |measured - forecast|
    covered: bool


@dataclass(frozen=True)
class Backtest:
    level: float
    held: tuple[Held, ...]
    decisions: tuple[tuple[int, float, str, str], ...]  # (dropped, top N, forecast best, measured best)
    forecastable: Mapping[str, bool]
    widen: float  # split-conformal factor for forecast half-widths beyond the largest N
    calibrated: bool  # enough residuals for the conformal rank

    @property
    def mean_error(self) -> float:
        return float(np.mean([h.error for h in self.held])) if self.held else math.nan

    @property
    def coverage(self) -> float:
        return float(np.mean([h.covered for h in self.held])) if self.held else math.nan

    @property
    def decision_accuracy(self) -> float:
        return float(np.mean([f == m for *_, f, m in self.decisions])) if self.decisions else math.nan


def _forecast(reps: Replicates, ab: ArmBootstrap, keep: np.ndarray, at: np.ndarray,
              level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Point forecast at ``at`` from the columns ``keep`` of the arm, and its replicate curves (B,
    len(at))."""
    n = np.array([reps.runs[i].n for i in keep], dtype=float)
    fit = fit_power(n, [reps.runs[i].score for i in keep])
    if not fit.ok:
        return None
    params = fit_batch("power", n, reps.scores[:, keep])
    return fit.predict(at), predict_params("power", params, at)


def backtest(reps: Replicates, arms: Mapping[str, ArmBootstrap], level: float = 0.9) -> Backtest | None:
    """Leave-top-out backtests of every arm with >= MIN_SIZES sizes; None when no arm has that many."""
    held: list[Held] = []
    forecastable: dict[str, bool] = {}
    for arm, ab in arms.items():
        if ab.ns.size < MIN_SIZES:
            continue
        cols = reps.columns(arm)
        col_n = np.array([reps.runs[i].n for i in cols], dtype=float)
        ok = True
        for drop in drops(ab.ns.size):
            top = ab.ns[-drop:]
            out = _forecast(reps, ab, cols[col_n < top[0]], top, level)
            if out is None:
                ok = False
                continue
            point, curves = out
            q = _upper_quantile(level, reps.dof([arm]))
            for k, n in enumerate(top):
                measured = cell(reps, cols[col_n == n], level)
                # replicate misses, forecast minus measured: the shared test items cancel in the pairing
                miss = curves[:, k] - ab.mean_reps[:, int(np.flatnonzero(ab.ns == n)[0])]
                lo, hi = np.nanquantile(miss - np.nanmean(miss), [1 - q, q])
                iv = clipped(Interval(float(point[k]), float(point[k] - hi), float(point[k] - lo), level))
                held.append(Held(arm, drop, float(n), measured.estimate, iv,
                                 abs(measured.estimate - iv.estimate),
                                 iv.contains(measured.estimate)))
        mine = [h for h in held if h.arm == arm]
        forecastable[arm] = ok and 2 * sum(h.covered for h in mine) >= len(mine)
    if not forecastable:
        return None
    return Backtest(level, tuple(held), _decisions(held), forecastable, *_widen(held, level))


def _decisions(held: list[Held]) -> tuple[tuple[int, float, str, str], ...]:
    """Best arm at each held-out top rung that two or more arms share: forecast vs measured."""
    out = []
    for drop in MAX_DROP:
        tops: dict[float, list[Held]] = {}
        for h in held:
            if h.dropped == drop:
                tops.setdefault(h.n, []).append(h)
        for n, hs in sorted(tops.items()):
            if len(hs) >= 2 and n == max(tops):
                out.append((drop, n, max(hs, key=lambda h: h.forecast.estimate).arm,
                            max(hs, key=lambda h: h.measured).arm))
    return tuple(out)


def _widen(held: list[Held], level: float) -> tuple[float, bool]:
    ratios = []
    for h in held:
        half = (h.forecast.upper - h.forecast.lower) / 2
        if half > 0:
            ratios.append(h.error / half)
    if not ratios:
        return math.inf, False
    ratios.sort()
    rank = math.ceil((len(ratios) + 1) * level)
    if rank > len(ratios):
        return max(1.0, ratios[-1]), False
    return max(1.0, ratios[rank - 1]), True
