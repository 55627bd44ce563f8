"""Bootstrap uncertainty for learning curves: intervals, crossovers, best mix per N, seed noise.

Resampling (``resample``) is done once for a whole sweep so every comparison is paired:
- over seeds: each run keeps its (arm, N) group mean and gets a resampled deviation from a group
  mean. Deviations are scaled by sqrt(k/(k-1)) so that the replicate variance of a group mean
  matches the unbiased s^2/k (with 3 seeds the plain bootstrap gives 2/3 of it; Davison & Hinkley
  1997, sec. 3.3). By default (seed_pool="arm") deviations are drawn from all sizes of the arm: with
  3 seeds a single group's 3 values say little about its noise, and pooling gave better coverage
  in simulation. seed_pool="n" resamples strictly within each (arm, N);
- over eval items: one set of item indices per replicate, shared by every run, the teacher (ceiling)
  and the untrained student (floor). A run's replicate score is its reported score plus the change
  of its item mean under that resample, so a score that is not exactly the item mean still works.
Intervals are percentile intervals at ``level`` (default 0.9), widened for the few seeds behind the
noise estimate: the tail quantiles are taken at Phi(t_dof^-1(q)) instead of q (Hesterberg 2015,
"expanded percentile interval"), with dof = runs - (arm, N) groups of the arms involved. With 3 seeds
at 7 sizes (dof 14) a 90% interval uses the 3.9% and 96.1% quantiles. Without seed resampling (or
with one seed per N) dof is infinite: no widening, and seed noise is not in the intervals.
Measured on simulated power-law sweeps (3 seeds, 7 sizes, 500-800 trials each), the 90% interval
for y_inf covered the truth in 88-90% of trials.
The mean of a single (arm, N) cell is the exception: with 2-3 seeds per cell, resampling cannot
represent seed-to-seed variance, so ``cell`` gives a t interval over its seeds plus the shared item SE
(``evals.analysis.cells``). Score-valued intervals (cell means, y_inf, curve bands) are clipped to [0, 1].
Everything is seeded (numpy Generator).
Pure numpy/scipy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from evals.analysis.cells import cell_interval, clip_to
from evals.analysis.saturation import (
    SCORE_BOUNDS,
    CurveFit,
    Form,
    RunScore,
    as_reference,
    as_runs,
    fit_batch,
    fit_power,
    fit_rectified,
    identified,
    n_sat,
    n_sat_power,
    pgr,
    predict_params,
)

Record = Mapping[str, Any] | RunScore


@dataclass(frozen=True)
class Interval:
    estimate: float
    lower: float
    upper: float
    level: float

    def contains(self, x: float) -> bool:
        return bool(self.lower <= x <= self.upper)


def clipped(iv: Interval, bounds: tuple[float, float] = SCORE_BOUNDS) -> Interval:
    """The interval of a score (or asymptote) inside the score's range."""
    return Interval(iv.estimate, *clip_to(iv.lower, iv.upper, bounds), iv.level)


def cell(reps: Replicates, cols: Sequence[int], level: float = 0.9) -> Interval:
    """The mean score of one (arm, N) cell: seed t interval plus item SE (``evals.analysis.cells``)."""
    runs = [reps.runs[i] for i in cols]
    items = [r.items for r in runs] if "items" in reps.over and all(r.items for r in runs) else None
    return Interval(*cell_interval([r.score for r in runs], items, level), level)


def _upper_quantile(level: float, dof: float) -> float:
    q = (1 + level) / 2
    return float(stats.norm.cdf(stats.t.ppf(q, dof))) if math.isfinite(dof) else q


def interval(samples: Any, estimate: float, level: float = 0.9, dof: float = math.inf) -> Interval:
    """Percentile interval, expanded for a noise estimate with ``dof`` degrees of freedom.

    NaN samples (failed refits) are dropped; +-inf are kept (then order statistics are used).
    """
    s = np.asarray(samples, dtype=float).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0 or not 0 < level < 1:
        return Interval(float(estimate), math.nan, math.nan, level)
    upper_q = _upper_quantile(level, dof)
    method = "linear" if np.all(np.isfinite(s)) else "inverted_cdf"
    lo, hi = np.quantile(s, [1 - upper_q, upper_q], method=method)
    return Interval(float(estimate), float(lo), float(hi), level)


@dataclass(frozen=True, eq=False)
class Replicates:
    """Bootstrap replicates of every run's score (columns follow ``runs``), paired across runs."""

    runs: tuple[RunScore, ...]
    scores: np.ndarray  # (B, R)
    ceiling: RunScore | None
    floor: RunScore | None
    ceiling_reps: np.ndarray | None  # (B,)
    floor_reps: np.ndarray | None
    over: tuple[str, ...]

    def columns(self, arm: str) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.runs) if r.arm == arm and r.feasible], dtype=int)

    def arms(self) -> list[str]:
        return list(dict.fromkeys(r.arm for r in self.runs if r.feasible))

    def dof(self, arms: Sequence[str]) -> float:
        """Degrees of freedom of the pooled seed noise of these arms (inf: no widening)."""
        runs = [r for r in self.runs if r.feasible and r.arm in arms]
        dof = len(runs) - len({(r.arm, r.n) for r in runs})
        return float(dof) if "seeds" in self.over and dof > 0 else math.inf


def _item_shift(items: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Change of each item mean under each item resample: (B, I) counts x (R, I) items -> (B, R)."""
    n_items = items.shape[1]
    return counts @ items.T / n_items - items.mean(axis=1)[None, :]


def _resolve_over(over: Sequence[str] | None, everyone: list[RunScore]) -> tuple[str, ...]:
    lengths = {len(r.items) if r.items is not None else 0 for r in everyone}
    have_items = 0 not in lengths and len(lengths) == 1
    if over is None:
        return ("seeds", "items") if have_items else ("seeds",)
    over = tuple(over)
    if unknown := set(over) - {"seeds", "items"}:
        raise ValueError(f"resample: over={over}: unknown {sorted(unknown)} (use 'seeds', 'items')")
    if "items" in over and not have_items:
        bad = next((r for r in everyone if r.items is None), None)
        why = f"run {bad.arm!r} n={bad.n} seed={bad.seed} has none" if bad else f"lengths differ {lengths}"
        raise ValueError(f"resample: over includes 'items' but {why}")
    return over


def _resample_seeds(scores: np.ndarray, runs: list[RunScore], pool: str,
                    rng: np.random.Generator) -> np.ndarray:
    """Replace each run's deviation from its (arm, N) group mean by a resampled one.

    Deviations are scaled by sqrt(k/(k-1)) first (unbiased group variance). pool="n" draws from the
    run's own group (3 seeds give each group variance only 2 dof); pool="arm" draws from all groups
    of the arm (the noise estimate pools every group's dof; assumes seed noise similar across N).
    """
    out = scores.copy()
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault((r.arm, r.n), []).append(i)

    def key(group: tuple[str, int]) -> Any:
        return group[0] if pool == "arm" else group

    devs: dict[Any, list[np.ndarray]] = {}
    for group, cols in groups.items():
        if len(cols) >= 2:
            k = len(cols)
            centre = scores[:, cols].mean(axis=1, keepdims=True)
            devs.setdefault(key(group), []).append((scores[:, cols] - centre) * math.sqrt(k / (k - 1)))
    for group, cols in groups.items():
        if key(group) not in devs:  # one seed and nothing to pool with: no seed noise to add
            continue
        pooled = np.concatenate(devs[key(group)], axis=1)
        pick = rng.integers(0, pooled.shape[1], size=(scores.shape[0], len(cols)))
        centre = scores[:, cols].mean(axis=1, keepdims=True)
        out[:, cols] = centre + np.take_along_axis(pooled, pick, axis=1)
    return out


def resample(records: Sequence[Record], *, ceiling: Any = None, floor: Any = None, n_boot: int = 500,
             over: Sequence[str] | None = None, seed_pool: str = "arm", seed: int = 0) -> Replicates:
    """Paired bootstrap replicates of all runs (and of the ceiling/floor when given).

    over: ("seeds",), ("items",) or both; None = seeds, plus items when every run, the ceiling and the
    floor carry items of one length. ``Replicates.over`` records what was used.
    """
    runs = as_runs(records)
    if not runs:
        raise ValueError("resample: no run records")
    if seed_pool not in ("arm", "n"):
        raise ValueError(f"resample: seed_pool={seed_pool!r}; use 'arm' or 'n'")
    named = ((ceiling, "ceiling"), (floor, "floor"))
    refs = [None if x is None else as_reference(x, name) for x, name in named]
    over = _resolve_over(over, runs + [r for r in refs if r is not None])
    rng = np.random.default_rng(seed)
    base = np.array([r.score for r in runs])
    scores = np.broadcast_to(base, (n_boot, base.size)).copy()
    ref_reps = [None if r is None else np.full(n_boot, r.score) for r in refs]
    if "items" in over:
        n_items = len(runs[0].items)
        idx = rng.integers(0, n_items, size=(n_boot, n_items))
        counts = np.zeros((n_boot, n_items))
        np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
        scores += _item_shift(np.array([r.items for r in runs], dtype=float), counts)
        for j, ref in enumerate(refs):
            if ref is not None:
                ref_reps[j] = ref.score + _item_shift(np.array([ref.items], dtype=float), counts)[:, 0]
    if "seeds" in over:
        scores = _resample_seeds(scores, runs, seed_pool, rng)
    return Replicates(tuple(runs), scores, refs[0], refs[1], ref_reps[0], ref_reps[1], over)


@dataclass(frozen=True, eq=False)
class ArmBootstrap:
    """One arm's point fit and its bootstrap replicates (all from one ``Replicates``)."""

    arm: str
    fraction: float
    fit: CurveFit
    eps: float
    replicates: Replicates
    ns: np.ndarray  # measured N, sorted
    means: np.ndarray  # (K,) observed mean score per N
    mean_reps: np.ndarray  # (B, K)
    scores_by_n: tuple[np.ndarray, ...]  # observed seed scores per N
    params: Mapping[str, np.ndarray]  # each (B,)
    n_sat_reps: np.ndarray  # (B,)


def _n_sat_reps(form: Form, params: Mapping[str, np.ndarray], eps: float) -> np.ndarray:
    if form == "power":
        return n_sat_power(params["A"], params["alpha"], eps)
    names = ("y_inf", "B", "D_l", "beta")
    out = np.empty(params["y_inf"].shape)
    for b in range(out.size):  # root finding per replicate; only the rectified form needs it
        fit = CurveFit(form, {k: float(params[k][b]) for k in names}, 0.0, math.nan, 0, True)
        out[b] = n_sat(fit, eps)
    return out


def bootstrap_arm(reps: Replicates, arm: str, *, form: Form = "power", eps: float = 0.01,
                  bounds: tuple[float, float] = SCORE_BOUNDS) -> ArmBootstrap:
    """Fit one arm's feasible runs, and refit every replicate (vectorised variable projection)."""
    cols = reps.columns(arm)
    if cols.size == 0:
        raise ValueError(f"bootstrap_arm: no feasible runs for arm {arm!r} (have {reps.arms()})")
    n = np.array([reps.runs[i].n for i in cols], dtype=float)
    observed = np.array([reps.runs[i].score for i in cols])
    fit = (fit_power if form == "power" else fit_rectified)(n, observed, bounds)
    b = reps.scores.shape[0]
    if fit.ok:
        params = fit_batch(form, n, reps.scores[:, cols], bounds)
        n_sat_reps = _n_sat_reps(form, params, eps)
    else:
        params = {k: np.full(b, math.nan) for k in fit.params}
        n_sat_reps = np.full(b, math.nan)
    ns = np.unique(n)
    masks = [n == v for v in ns]
    return ArmBootstrap(
        arm=arm, fraction=reps.runs[cols[0]].fraction, fit=fit, eps=eps, replicates=reps, ns=ns,
        means=np.array([observed[m].mean() for m in masks]),
        mean_reps=np.column_stack([reps.scores[:, cols[m]].mean(axis=1) for m in masks]),
        scores_by_n=tuple(observed[m] for m in masks), params=params, n_sat_reps=n_sat_reps)


def curve_reps(ab: ArmBootstrap, grid: Any) -> np.ndarray:
    """Replicate curves on a grid of N: (B, len(grid))."""
    return predict_params(ab.fit.form, ab.params, np.asarray(grid, dtype=float))


@dataclass(frozen=True, eq=False)
class ArmSummary:
    arm: str
    fraction: float
    form: Form
    fit: CurveFit
    eps: float
    n_range: tuple[float, float]  # measured N, smallest and largest
    y_inf: Interval
    exponent: Interval  # alpha (power) or beta (rectified)
    n_sat: Interval
    pgr_inf: Interval | None  # PGR of the asymptote; None without ceiling and floor
    teacher_gap: Interval | None  # ceiling - y_inf; None without a ceiling
    means: tuple[tuple[float, Interval], ...]  # (N, mean score) per measured N
    band_n: np.ndarray  # grid of N for plots
    band_lower: np.ndarray
    band_upper: np.ndarray
    # parameters the data do not pin down (saturation.identified): reported as such, never as numbers
    unidentified: tuple[str, ...] = ()

    def identified(self, name: str) -> bool:
        return name not in self.unidentified


def summarize(ab: ArmBootstrap, *, level: float = 0.9, grid: Any = None) -> ArmSummary:
    """Intervals for y_inf, the exponent, N_sat, the asymptote's PGR and the teacher gap; plot bands."""
    reps, fit, p = ab.replicates, ab.fit, ab.params
    dof = reps.dof([ab.arm])
    shape = "alpha" if fit.form == "power" else "beta"
    grid = np.geomspace(ab.ns[0], ab.ns[-1], 60) if grid is None else np.asarray(grid, dtype=float)
    curves = curve_reps(ab, grid)
    band = np.full((2, grid.size), np.nan)
    some = ~np.isnan(curves).all(axis=0)
    if some.any():
        q = _upper_quantile(level, dof)
        band[:, some] = np.clip(np.nanquantile(curves[:, some], [1 - q, q], axis=0), *SCORE_BOUNDS)
    pgr_inf = gap = None
    if reps.ceiling is not None:
        gap = interval(reps.ceiling_reps - p["y_inf"], reps.ceiling.score - fit.y_inf, level, dof)
        if reps.floor is not None:
            pgr_inf = interval(pgr(p["y_inf"], reps.floor_reps, reps.ceiling_reps),
                               pgr(fit.y_inf, reps.floor.score, reps.ceiling.score), level, dof)
    y_inf = clipped(interval(p["y_inf"], fit.y_inf, level, dof))
    exponent = interval(p[shape], fit.params[shape], level, dof)
    return ArmSummary(
        arm=ab.arm, fraction=ab.fraction, form=fit.form, fit=fit, eps=ab.eps,
        n_range=(float(ab.ns[0]), float(ab.ns[-1])), y_inf=y_inf, exponent=exponent,
        n_sat=interval(ab.n_sat_reps, n_sat(fit, ab.eps), level, dof), pgr_inf=pgr_inf, teacher_gap=gap,
        means=tuple((float(v), cell(reps, _cols_at(reps, ab.arm, v), level)) for v in ab.ns),
        band_n=grid, band_lower=band[0], band_upper=band[1],
        unidentified=_unidentified(fit, y_inf, exponent, shape))


def _cols_at(reps: Replicates, arm: str, n: float) -> list[int]:
    return [int(i) for i in reps.columns(arm) if reps.runs[i].n == n]


def _unidentified(fit: CurveFit, y_inf: Interval, exponent: Interval, shape: str) -> tuple[str, ...]:
    """Names of what the fit does not identify: y_inf (and with it the teacher gap and PGR), the
    exponent (and with it N_sat, unless the curve is flat, where N_sat = 1 says exactly that)."""
    if not fit.ok:
        return ("y_inf", "exponent", "n_sat", "teacher_gap", "pgr_inf")
    out = []
    if not identified("y_inf", y_inf.estimate, y_inf.lower, y_inf.upper):
        out += ["y_inf", "teacher_gap", "pgr_inf"]
    flat = fit.params.get("A", fit.params.get("B", 0.0)) == 0.0
    if not identified(shape, exponent.estimate, exponent.lower, exponent.upper):
        out += ["exponent"] + ([] if flat else ["n_sat"])
    return tuple(out)


def _paired_check(a: ArmBootstrap, b: ArmBootstrap, caller: str) -> None:
    if a.replicates is not b.replicates:
        raise ValueError(f"{caller}: arms {a.arm!r} and {b.arm!r} come from different resample() calls")


def arm_difference(a: ArmBootstrap, b: ArmBootstrap, n: float, level: float = 0.9) -> Interval:
    """Mean score of arm a minus arm b at a measured N (paired bootstrap interval)."""
    _paired_check(a, b, "arm_difference")
    ka, kb = np.flatnonzero(a.ns == n), np.flatnonzero(b.ns == n)
    if ka.size == 0 or kb.size == 0:
        raise ValueError(f"arm_difference: N={n} not measured for both {a.arm!r} and {b.arm!r}")
    ka, kb = ka[0], kb[0]
    return interval(a.mean_reps[:, ka] - b.mean_reps[:, kb], a.means[ka] - b.means[kb], level,
                    a.replicates.dof([a.arm, b.arm]))


@dataclass(frozen=True)
class Crossover:
    leader: str  # the arm ahead at the top of the common N range
    trailer: str
    n: Interval  # N from which the leader stays ahead on the fitted curves
    share_crossing: float  # share of replicates whose lead changes inside the range
    data_agrees: bool  # measured means: leader behind (or tied) below n, ahead at every N above
    data_diffs: tuple[tuple[float, float], ...]  # (N, leader mean - trailer mean), common measured N


def _last_crossing(d: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per row of d (B, G; > 0 means the leader is ahead): N from which d stays > 0.

    grid[0] when ahead everywhere (the lead was taken at or before the range), inf when not ahead at
    the end, NaN for failed rows; otherwise interpolated linearly in log N.
    """
    behind = ~(d > 0)
    last = grid.size - 1 - np.argmax(behind[:, ::-1], axis=1)
    j = np.minimum(last, grid.size - 2)
    rows = np.arange(d.shape[0])
    d0, d1 = d[rows, j], d[rows, j + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip(-d0 / (d1 - d0), 0.0, 1.0)
    logg = np.log(grid)
    out = np.exp(logg[j] + t * (logg[j + 1] - logg[j]))
    out = np.where(last == grid.size - 1, np.inf, out)
    out = np.where(behind.any(axis=1), out, grid[0])
    return np.where(np.isnan(d).any(axis=1), np.nan, out)


def crossover(a: ArmBootstrap, b: ArmBootstrap, level: float = 0.9, grid_size: int = 400) -> Crossover | None:
    """Where one arm overtakes the other for good, on the fitted curves, within the common N range.

    None when either fit failed, the ranges do not overlap, or the point-fit curves do not cross in
    range. The interval comes from the same rule applied to each replicate's curves (replicates that
    never cross count as the range start or inf, so the interval can be open-ended).
    """
    _paired_check(a, b, "crossover")
    lo, hi = max(a.ns[0], b.ns[0]), min(a.ns[-1], b.ns[-1])
    if not (a.fit.ok and b.fit.ok) or lo >= hi:
        return None
    grid = np.geomspace(lo, hi, grid_size)
    d = a.fit.predict(grid) - b.fit.predict(grid)
    nonzero = d[d != 0]
    if nonzero.size == 0 or np.all(nonzero > 0) or np.all(nonzero < 0):
        return None
    orient = float(np.sign(nonzero[-1]))
    point = float(_last_crossing(orient * d[None, :], grid)[0])
    if not math.isfinite(point):
        return None
    k = int(np.searchsorted(grid, point))
    if 0 < k < grid.size and d[k - 1] * d[k] < 0:  # polish the interpolated root on the fits
        point = optimize.brentq(lambda x: float(a.fit.predict(x) - b.fit.predict(x)), grid[k - 1], grid[k])
    reps = _last_crossing(orient * (curve_reps(a, grid) - curve_reps(b, grid)), grid)
    ok = reps[~np.isnan(reps)]
    share = float(np.mean((ok > grid[0]) & np.isfinite(ok))) if ok.size else math.nan
    common = np.intersect1d(a.ns, b.ns)
    diffs = tuple((float(v), orient * float(a.means[a.ns == v][0] - b.means[b.ns == v][0])) for v in common)
    above = [x for v, x in diffs if v > point]
    below = [x for v, x in diffs if v < point]
    agrees = bool(above) and all(x > 0 for x in above) and (not below or any(x <= 0 for x in below))
    leader, trailer = (a.arm, b.arm) if orient > 0 else (b.arm, a.arm)
    n = interval(reps, point, level, a.replicates.dof([a.arm, b.arm]))
    return Crossover(leader, trailer, n, share, agrees, diffs)


@dataclass(frozen=True)
class NoiseCheck:
    diff: float  # mean(a) - mean(b)
    seed_sd: float  # pooled seed-to-seed SD (NaN with < 3 runs in all)
    within: bool


def within_noise(a_scores: Sequence[float], b_scores: Sequence[float], *, min_sd: float = 0.0) -> NoiseCheck:
    """Is mean(a) - mean(b) smaller than seed noise?

    Rule: |diff| <= max(pooled seed SD, min_sd), the SD of a single run across seeds pooled over both
    groups. It is a screen ("not bigger than what reseeding alone does"), not a significance test;
    the paired bootstrap interval of the difference is reported beside it where one is available.
    Without any noise estimate (fewer than 3 runs in all and min_sd = 0) a difference cannot be
    told from noise, so it counts as within noise.
    """
    a, b = np.asarray(a_scores, dtype=float), np.asarray(b_scores, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"within_noise: need scores on both sides, got {a.size} and {b.size}")
    diff = float(a.mean() - b.mean())
    dof = a.size + b.size - 2
    ss = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()
    sd = float(math.sqrt(ss / dof)) if dof > 0 else math.nan
    threshold = max(sd, min_sd) if math.isfinite(sd) else min_sd
    within = abs(diff) <= threshold if threshold > 0 or math.isfinite(sd) else True
    return NoiseCheck(diff, sd, bool(within))


@dataclass(frozen=True)
class BestFraction:
    n: float
    arm: str
    fraction: float
    score: Interval  # mean score of the best arm at this N
    runner_up: str | None
    runner_up_fraction: float
    diff: Interval | None  # best - runner-up, paired bootstrap
    noise: NoiseCheck | None  # best vs runner-up seed scores
    within_noise: bool  # the best is not separable from the runner-up by more than seed noise
    share_best: float  # share of replicates in which this arm has the top mean


def best_fraction_per_n(data: Replicates | Sequence[Record], *, level: float = 0.9, n_boot: int = 1000,
                        over: Sequence[str] | None = None, seed: int = 0) -> list[BestFraction]:
    """For each measured N, the arm (mix fraction f) with the highest mean score over feasible runs.

    ``data`` is either run records (resampled here with n_boot/over/seed) or existing replicates.
    Ties in the mean go to the arm listed first.
    """
    reps = data if isinstance(data, Replicates) else resample(data, n_boot=n_boot, over=over, seed=seed)
    out = []
    for n in sorted({r.n for r in reps.runs if r.feasible}):
        cols = {arm: np.array([i for i in reps.columns(arm) if reps.runs[i].n == n]) for arm in reps.arms()}
        cols = {arm: c for arm, c in cols.items() if c.size}
        arms = list(cols)
        obs = np.array([np.mean([reps.runs[i].score for i in cols[a]]) for a in arms])
        rep_means = np.column_stack([reps.scores[:, cols[a]].mean(axis=1) for a in arms])
        order = np.argsort(-obs, kind="stable")
        best = order[0]
        frac = {a: reps.runs[cols[a][0]].fraction for a in arms}
        share = float(np.mean(np.argmax(rep_means, axis=1) == best))
        score = cell(reps, cols[arms[best]], level)
        if len(arms) == 1:
            out.append(BestFraction(n, arms[best], frac[arms[best]], score, None, math.nan, None, None, False,
                                    share))
            continue
        second = order[1]
        noise = within_noise([reps.runs[i].score for i in cols[arms[best]]],
                             [reps.runs[i].score for i in cols[arms[second]]])
        diff = interval(rep_means[:, best] - rep_means[:, second], obs[best] - obs[second], level,
                        reps.dof([arms[best], arms[second]]))
        # within noise unless the interval of the lead excludes zero (and the lead beats seed SD)
        within = noise.within or not (diff.lower > 0 or diff.upper < 0)
        out.append(BestFraction(n, arms[best], frac[arms[best]], score, arms[second], frac[arms[second]],
                                diff, noise, within, share))
    return out


@dataclass(frozen=True, eq=False)
class Analysis:
    replicates: Replicates
    arms: dict[str, ArmBootstrap]
    summaries: dict[str, ArmSummary]
    best: list[BestFraction]
    crossovers: list[Crossover]


def analyze(records: Sequence[Record], *, ceiling: Any = None, floor: Any = None, n_boot: int = 500,
            level: float = 0.9, eps: float = 0.01, form: Form = "power", over: Sequence[str] | None = None,
            seed_pool: str = "arm", seed: int = 0) -> Analysis:
    """Everything the report needs from one sweep, from one shared (paired) set of replicates."""
    reps = resample(records, ceiling=ceiling, floor=floor, n_boot=n_boot, over=over, seed_pool=seed_pool,
                    seed=seed)
    arms = {arm: bootstrap_arm(reps, arm, form=form, eps=eps) for arm in reps.arms()}
    names = list(arms)
    pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    crossings = [crossover(arms[x], arms[y], level) for x, y in pairs]
    return Analysis(reps, arms, {a: summarize(ab, level=level) for a, ab in arms.items()},
                    best_fraction_per_n(reps, level=level), [c for c in crossings if c is not None])
