"""Saturating learning-curve fits: where does more data stop paying?

Two forms of score-vs-data-size curves (scores are fractions in [0, 1]):
- ``power``:     y = y_inf - A * N**(-alpha)          (saturating power law)
- ``rectified``: y = y_inf - B / (D_l + N**beta)      (Qin et al. 2025 rectified law, for a rising score)
The rectified form nests the power law (D_l = 0), so AICc decides whether its flat start is worth a
parameter. Pure numpy/scipy: no I/O, no plotting.

Both forms are linear in (y_inf, amplitude) once the shape parameters are fixed. ``fit_batch`` uses
that (variable projection): it profiles the shape on a grid, solving the 2-parameter bounded least
squares in closed form for every grid point and every dataset at once, which is what makes thousands
of bootstrap refits cheap. Single fits (``fit_power``/``fit_rectified``) polish the best grid points
with ``scipy.optimize.least_squares``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import optimize

from evals.analysis.records import Cost, Reference, RunRecord

Form = Literal["power", "rectified"]
SHAPE_PARAMS = {"power": ("alpha",), "rectified": ("beta", "D_l")}
PARAM_NAMES = {"power": ("y_inf", "A", "alpha"), "rectified": ("y_inf", "B", "D_l", "beta")}
SCORE_BOUNDS = (0.0, 1.0)  # an asymptote of a fraction-correct score lies in [0, 1]
_ALPHA_GRID = np.geomspace(0.01, 4.0, 100)  # power-law exponents: coarse profile, then refined
_BETA_GRID = np.geomspace(0.05, 4.0, 48)
# d = D_l / N_ref**beta on a grid uniform in v = asinh(d / 1e-3): linear through 0, logarithmic above
_V_GRID = np.linspace(0.0, math.asinh(1e6), 30)
_D_MAX = 1e3
_N_MAX = 1e9  # n_sat searches N in [1, _N_MAX]; beyond that it reports inf


@dataclass(frozen=True)
class RunScore:
    """One trained (or reference) student run: its mix and its eval score."""

    arm: str
    fraction: float
    n: int
    seed: int
    score: float
    items: tuple[float, ...] | None = None  # per-item score (0/1 correctness), same item order in every run
    feasible: bool = True
    cost: Cost = field(default_factory=Cost, hash=False)

    @classmethod
    def from_mapping(cls, rec: Mapping[str, Any] | RunRecord | RunScore) -> RunScore:
        """A run from its record; a plain mapping is read as a ``RunRecord`` (arm and n may be left out)."""
        if isinstance(rec, RunScore):
            return rec
        if not isinstance(rec, RunRecord):
            if unknown := set(rec) - set(cls.__dataclass_fields__):
                raise ValueError(f"run record: unknown keys {sorted(unknown)}")
            rec = RunRecord.model_validate({"arm": "", "n": 0, **rec})
        return cls.of_record(rec)

    @classmethod
    def of_record(cls, rec: RunRecord) -> RunScore:
        if rec.score is None:
            raise ValueError(f"run arm={rec.arm!r} n={rec.n} seed={rec.seed}: no score (infeasible run)")
        run = cls(arm=rec.arm, fraction=rec.fraction, n=rec.n, seed=rec.seed, score=float(rec.score),
                  items=None if rec.items is None else tuple(float(v) for v in rec.items),
                  feasible=rec.feasible, cost=rec.cost)
        run.validate()
        return run

    def validate(self) -> None:
        where = f"run arm={self.arm!r} n={self.n} seed={self.seed}"
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"{where}: score {self.score} outside [0, 1] (scores are fractions)")
        if self.items is not None and any(not 0.0 <= v <= 1.0 for v in self.items):
            raise ValueError(f"{where}: items must be per-item scores in [0, 1] (0/1 for exact match)")


def as_runs(records: Sequence[Mapping[str, Any] | RunRecord | RunScore]) -> list[RunScore]:
    return [RunScore.from_mapping(r) for r in records]


def as_reference(ref: float | Mapping[str, Any] | Reference | RunScore, name: str) -> RunScore:
    """A ceiling (teacher) or floor (untrained student), given as a score or a run record."""
    if isinstance(ref, RunScore):
        return ref
    ref = ref if isinstance(ref, Reference) else Reference.model_validate(ref)
    return RunScore(arm=name, fraction=math.nan, n=0, seed=0, score=float(ref.score),
                    items=None if ref.items is None else tuple(float(v) for v in ref.items))


@dataclass(frozen=True)
class CurveFit:
    """A fitted curve. ``ok`` is False (params NaN, note says why) when the data cannot support it."""

    form: Form
    params: Mapping[str, float]
    sse: float
    aicc: float  # small-sample AIC, Gaussian errors, k = params + 1 (noise variance)
    n_points: int
    ok: bool
    note: str = ""

    @property
    def y_inf(self) -> float:
        return self.params["y_inf"]

    def predict(self, n: Any) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        if not self.ok:
            return np.full(n.shape, math.nan)
        return predict_params(self.form, {k: np.asarray(v) for k, v in self.params.items()}, n)


def predict_params(form: Form, params: Mapping[str, np.ndarray], n: np.ndarray) -> np.ndarray:
    """Curve values; params may be arrays of shape (B,), then the result is (B, len(n))."""
    p = {k: np.asarray(v, dtype=float)[..., None] if np.ndim(v) else float(v) for k, v in params.items()}
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if form == "power":
            amp, term = p["A"], n ** (-p["alpha"])
        else:
            amp, term = p["B"], 1.0 / (p["D_l"] + n ** p["beta"])
        return p["y_inf"] - np.where(amp == 0, 0.0, amp * term)  # flat fits leave the shape NaN


def _clean(n: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    n, y = np.asarray(n, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if n.shape != y.shape:
        raise ValueError(f"fit: n has {n.size} values but y has {y.size}")
    keep = np.isfinite(n) & np.isfinite(y)
    if np.any(n[keep] <= 0):
        raise ValueError(f"fit: data sizes must be positive, got {n[keep].min()}")
    return n[keep], y[keep]


def _failed(form: Form, n_points: int, note: str) -> CurveFit:
    params = dict.fromkeys(PARAM_NAMES[form], math.nan)
    return CurveFit(form, params, math.nan, math.inf, n_points, False, note)


def _aicc(sse: float, m: int, p: int) -> float:
    k = p + 1
    if m - k - 1 <= 0:
        return math.inf
    return m * math.log(max(sse, 1e-300) / m) + 2 * k + 2 * k * (k + 1) / (m - k - 1)


def _basis(form: Form, shape: np.ndarray, r: np.ndarray) -> np.ndarray:
    """x(N) for each shape row (alpha) or (beta, d): model y = y_inf - c * x."""
    with np.errstate(over="ignore", divide="ignore"):
        if form == "power":
            return r[None, :] ** (-shape[:, :1])
        return 1.0 / (shape[:, 1:2] + r[None, :] ** shape[:, :1])


def _shape_grid(form: Form) -> np.ndarray:
    if form == "power":
        return _ALPHA_GRID[:, None]
    beta, d = np.meshgrid(_BETA_GRID, 1e-3 * np.sinh(_V_GRID), indexing="ij")
    return np.column_stack([beta.ravel(), d.ravel()])


def _solve(sx, sxx, sxy, syy, ybar, m: int, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """Bounded least squares of y = y0 - c*x from centred sums (y already has its mean removed).

    Constraints c >= 0 and lo <= y0 <= hi. The problem is a convex QP in 2 variables, so its minimum
    is the best feasible one among the interior solution and the three edge solutions (c = 0,
    y0 = lo, y0 = hi). All arguments broadcast; returns y0, c, sse.
    """
    shape = np.broadcast_shapes(np.shape(sxy), np.shape(sx), np.shape(ybar))
    lo_c, hi_c = lo - ybar, hi - ybar

    def sse(y0: np.ndarray, c: np.ndarray) -> np.ndarray:
        return syy + m * y0**2 + c**2 * sxx + 2 * c * sxy - 2 * y0 * c * sx

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vx = sxx - sx**2 / m
        c_free = -sxy / vx
        y_free = c_free * sx / m
        free_ok = (c_free >= 0) & (y_free >= lo_c) & (y_free <= hi_c) & (vx > 1e-300)
        cands = [(np.where(free_ok, y_free, 0.0), np.where(free_ok, c_free, 0.0)),
                 (np.clip(0.0, lo_c, hi_c), np.zeros(shape))]
        for bound in (lo_c, hi_c):
            cands.append((bound, np.nan_to_num(np.clip((bound * sx - sxy) / sxx, 0.0, None))))
        cands = [(np.broadcast_to(y0, shape), np.broadcast_to(c, shape)) for y0, c in cands]
        costs = [sse(y0, c) for y0, c in cands]
    costs[0] = np.where(free_ok, costs[0], np.inf)
    best = np.argmin(np.stack(costs), axis=0)
    y0 = np.choose(best, [c[0] for c in cands]) + ybar
    c = np.choose(best, [c[1] for c in cands])
    return y0, c, np.maximum(np.choose(best, costs), 0.0)


def _centred(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ybar = y.mean(axis=1, keepdims=True)
    yc = y - ybar
    return yc, ybar, (yc * yc).sum(axis=1, keepdims=True)


def _profile(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """Fit every basis row against datasets y (B, m): y0, c, sse of shape (B, G).

    x is (G, m), shared by all datasets, or (B, G, m), one set of basis rows per dataset.
    """
    yc, ybar, syy = _centred(y)
    if x.ndim == 2:
        sx, sxx, sxy = x.sum(axis=1)[None, :], (x * x).sum(axis=1)[None, :], yc @ x.T
    else:
        sx, sxx, sxy = x.sum(axis=2), (x * x).sum(axis=2), np.einsum("bgm,bm->bg", x, yc)
    return _solve(sx, sxx, sxy, syy, ybar, y.shape[1], lo, hi)


def _parabola_vertex(logs: np.ndarray, sse: np.ndarray) -> np.ndarray:
    """Per row, the vertex of the parabola through the grid minimum and its neighbours.

    logs: (G,) uniform grid or (B, G) rows of uniform grids, in log alpha. Stays within one step.
    """
    logs = np.broadcast_to(logs, sse.shape)
    rows = np.arange(sse.shape[0])
    idx = np.argmin(sse, axis=1)
    i = np.clip(idx, 1, sse.shape[1] - 2)
    s0, s1, s2 = sse[rows, i - 1], sse[rows, i], sse[rows, i + 1]
    h = logs[rows, i + 1] - logs[rows, i]
    curv = s0 - 2 * s1 + s2
    with np.errstate(divide="ignore", invalid="ignore"):
        step = 0.5 * h * (s0 - s2) / curv
    step = np.where(np.isfinite(step) & (curv > 0) & (idx == i), np.clip(step, -h, h), 0.0)
    return logs[rows, idx] + np.where(idx == i, step + logs[rows, i] - logs[rows, idx], 0.0)


def _fit_alpha(r: np.ndarray, y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Profiled power-law exponent per dataset: coarse grid, a fine grid around its minimum, parabola."""
    logs = np.log(_ALPHA_GRID)
    _, _, sse = _profile(r[None, :] ** (-_ALPHA_GRID[:, None]), y, lo, hi)
    centre = _parabola_vertex(logs, sse)
    h = logs[1] - logs[0]
    fine = centre[:, None] + np.linspace(-h, h, 9)[None, :]
    _, _, sse = _profile(r[None, None, :] ** (-np.exp(fine)[:, :, None]), y, lo, hi)
    return np.exp(_parabola_vertex(fine, sse))


def _fit_beta_d(r: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Profiled rectified-law shape (beta, d) per dataset: a coarse grid, then a 7x7 window that
    moves along the (often long, curved) SSE valley and shrinks 3x once its best point is inside."""
    grid = _shape_grid("rectified")
    _, _, sse = _profile(_basis("rectified", grid, r), y, lo, hi)
    idx = np.argmin(sse, axis=1)
    b = y.shape[0]
    lb, v = np.log(grid[idx, 0]), np.arcsinh(grid[idx, 1] / 1e-3)
    hb = np.full(b, math.log(_BETA_GRID[1] / _BETA_GRID[0]))
    hv = np.full(b, _V_GRID[1] - _V_GRID[0])
    offsets = np.linspace(-1.0, 1.0, 7)
    rows = np.arange(b)
    for _ in range(12):
        lbs = np.clip(lb[:, None, None] + hb[:, None, None] * offsets[None, :, None],
                      math.log(_BETA_GRID[0]), math.log(_BETA_GRID[-1]))
        vs = np.clip(v[:, None, None] + hv[:, None, None] * offsets[None, None, :], 0.0, _V_GRID[-1])
        lbs, vs = (np.broadcast_to(a, (b, 7, 7)).reshape(b, 49) for a in (lbs, vs))
        with np.errstate(over="ignore", divide="ignore"):
            x = 1.0 / (1e-3 * np.sinh(vs)[..., None] + r[None, None, :] ** np.exp(lbs)[..., None])
        j = np.argmin(_profile(x, y, lo, hi)[2], axis=1)
        inside = (j // 7 % 6 != 0) & (j % 7 % 6 != 0)  # not on the window's edge: zoom in
        lb, v = lbs[rows, j], vs[rows, j]
        hb, hv = np.where(inside, hb / 3, hb), np.where(inside, hv / 3, hv)
    return np.exp(lb), 1e-3 * np.sinh(v)


def fit_batch(form: Form, n: Sequence[float], y: np.ndarray,
              bounds: tuple[float, float] = SCORE_BOUNDS) -> dict[str, np.ndarray]:
    """Least-squares fits of one form to many datasets sharing the sizes n (bootstrap replicates).

    y: (B, m) scores; returns natural parameters (see PARAM_NAMES) and "sse", each of shape (B,).
    Shape parameters are profiled on grids: for the power law a coarse grid, a 9-point grid around
    its best point and a parabola (alpha to well under 1%); for the rectified law a coarse grid and
    a moving, shrinking 7x7 window (beta to ~1%, D_l to a few %). Single fits polish further with
    least_squares.
    """
    n = np.asarray(n, dtype=float)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    n_ref = float(np.exp(np.log(n).mean()))
    r = n / n_ref
    if form == "power":
        alpha = _fit_alpha(r, y, *bounds)
        y0, c, sse = (v[:, 0] for v in _profile(r[None, None, :] ** (-alpha[:, None, None]), y, *bounds))
        return {"y_inf": y0, "A": c * n_ref**alpha, "alpha": alpha, "sse": sse}
    beta, d = _fit_beta_d(r, y, *bounds)
    x = 1.0 / (d[:, None, None] + r[None, None, :] ** beta[:, None, None])
    y0, c, sse = (v[:, 0] for v in _profile(x, y, *bounds))
    scale = n_ref**beta
    return {"y_inf": y0, "B": c * scale, "D_l": d * scale, "beta": beta, "sse": sse}


def _model_scaled(form: Form, theta: np.ndarray, r: np.ndarray) -> np.ndarray:
    if form == "power":
        return theta[0] - theta[1] * r ** (-theta[2])
    return theta[0] - theta[1] / (theta[3] + r ** theta[2])


def _polish(form: Form, r: np.ndarray, y: np.ndarray, starts: list[np.ndarray],
            bounds: tuple[float, float]) -> np.ndarray:
    """Multi-start bounded least squares (scipy) on the scaled parameters; the best start wins."""
    lo = [bounds[0], 0.0, _ALPHA_GRID[0]] if form == "power" else [bounds[0], 0.0, _BETA_GRID[0], 0.0]
    if form == "rectified":
        hi = [bounds[1], np.inf, _BETA_GRID[-1], _D_MAX]
    else:
        hi = [bounds[1], np.inf, _ALPHA_GRID[-1]]
    best, best_cost = starts[0], float(np.sum((_model_scaled(form, starts[0], r) - y) ** 2))
    for x0 in starts:
        x0 = np.clip(x0, lo, hi)
        try:
            res = optimize.least_squares(lambda t: _model_scaled(form, t, r) - y, x0, bounds=(lo, hi),
                                         x_scale="jac", max_nfev=400)
        except (ValueError, FloatingPointError):  # a start at a singular point: others remain
            continue
        cost = float(np.sum(res.fun**2))
        if np.isfinite(cost) and cost < best_cost:
            best, best_cost = res.x, cost
    return best


def _grid_starts(form: Form, r: np.ndarray, y: np.ndarray, bounds: tuple[float, float]) -> list[np.ndarray]:
    """The best few grid points of the profiled fit, as starts for the polish."""
    grid = _shape_grid(form)
    y0, c, sse = _profile(_basis(form, grid, r), y[None, :], *bounds)
    order = np.argsort(sse[0])[:3]
    return [np.concatenate([[y0[0, i], c[0, i]], grid[i]]) for i in order]


def _fit(form: Form, n: Sequence[float], y: Sequence[float], bounds: tuple[float, float]) -> CurveFit:
    n, y = _clean(n, y)
    names, m = PARAM_NAMES[form], n.size
    need = len(names)
    if np.unique(n).size < need:
        return _failed(form, m, f"{form} fit needs >= {need} distinct N, got {np.unique(n).size}")
    if np.ptp(y) < 1e-12:
        params = dict.fromkeys(names, 0.0) | dict.fromkeys(SHAPE_PARAMS[form], math.nan)
        params["y_inf"] = float(y[0])
        return CurveFit(form, params, 0.0, _aicc(0.0, m, need), m, True, "flat: no rise, shape undetermined")
    n_ref = float(np.exp(np.log(n).mean()))
    r = n / n_ref
    theta = _polish(form, r, y, _grid_starts(form, r, y, bounds), bounds)
    sse = float(np.sum((_model_scaled(form, theta, r) - y) ** 2))
    scale = n_ref ** theta[2]
    if form == "power":
        params = {"y_inf": theta[0], "A": theta[1] * scale, "alpha": theta[2]}
    else:
        params = {"y_inf": theta[0], "B": theta[1] * scale, "D_l": theta[3] * scale, "beta": theta[2]}
    notes = [f"y_inf at bound {b}" for b in bounds if abs(theta[0] - b) < 1e-9]
    if theta[1] <= 1e-12:
        notes.append("no rise: amplitude 0")
    return CurveFit(form, {k: float(v) for k, v in params.items()}, sse, _aicc(sse, m, need), m, True,
                    "; ".join(notes))


# The range a fit may put each parameter in (the grids' and the polish's bounds): a value on an edge,
# or an interval that covers almost all of it, says the data do not pin the parameter down.
PARAM_RANGE = {"y_inf": SCORE_BOUNDS, "alpha": (float(_ALPHA_GRID[0]), float(_ALPHA_GRID[-1])),
               "beta": (float(_BETA_GRID[0]), float(_BETA_GRID[-1]))}
_EDGE = 1e-3  # relative closeness to a bound that counts as "on it"
_SPAN = 0.9  # share of the allowed range an interval may cover and still identify its parameter


def identified(name: str, estimate: float, lower: float, upper: float) -> bool:
    """Whether a fitted parameter is pinned down by the data (see ``PARAM_RANGE``).

    Not identified: a NaN estimate (e.g. the shape of a flat curve), an estimate on a bound of its
    range, or an interval covering at least 90% of the range (on a log scale for exponents). A
    parameter without a known range is identified when its estimate and interval are finite.
    """
    if not math.isfinite(estimate):
        return False
    if name not in PARAM_RANGE:
        return math.isfinite(lower) and math.isfinite(upper)
    lo, hi = PARAM_RANGE[name]
    scale = (lambda v: math.log(max(v, 1e-300))) if name != "y_inf" else (lambda v: v)
    width = scale(hi) - scale(lo)
    if min(abs(scale(estimate) - scale(lo)), abs(scale(hi) - scale(estimate))) <= _EDGE * width:
        return False
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return False
    covered = min(scale(upper), scale(hi)) - max(scale(lower), scale(lo))
    return covered < _SPAN * width


def fit_power(n: Sequence[float], y: Sequence[float], bounds: tuple[float, float] = SCORE_BOUNDS) -> CurveFit:
    """y = y_inf - A * N**(-alpha), with bounds[0] <= y_inf <= bounds[1], A >= 0, 0.01 <= alpha <= 4.

    n, y: one value per run (repeated N for seeds is fine). Needs >= 3 distinct N; otherwise returns
    ``ok=False``. A flat curve returns A = 0 and alpha = NaN.
    """
    return _fit("power", n, y, bounds)


def fit_rectified(n: Sequence[float], y: Sequence[float],
                  bounds: tuple[float, float] = SCORE_BOUNDS) -> CurveFit:
    """y = y_inf - B / (D_l + N**beta), B >= 0, D_l >= 0, 0.05 <= beta <= 4. Needs >= 4 distinct N."""
    return _fit("rectified", n, y, bounds)


@dataclass(frozen=True)
class FitComparison:
    preferred: Form | None  # None when either fit failed or has no finite AICc
    delta_aicc: float  # AICc of the other form minus the preferred one (>= 0)
    weight: float  # Akaike weight of the preferred form, in [0.5, 1]
    strength: str  # "indistinguishable" (< 2), "better" (2-10), "decisive" (> 10), or why none


def compare_fits(a: CurveFit, b: CurveFit) -> FitComparison:
    """Which of two fits to the same data is better by AICc, and by how much."""
    if not (a.ok and b.ok) or not (math.isfinite(a.aicc) and math.isfinite(b.aicc)):
        why = "; ".join(f"{f.form}: {f.note or 'too few points for AICc'}" for f in (a, b)
                        if not f.ok or not math.isfinite(f.aicc))
        return FitComparison(None, math.nan, math.nan, f"not comparable ({why})")
    best, other = (a, b) if a.aicc <= b.aicc else (b, a)
    delta = other.aicc - best.aicc
    strength = "indistinguishable" if delta < 2 else "better" if delta <= 10 else "decisive"
    return FitComparison(best.form, delta, 1.0 / (1.0 + math.exp(-delta / 2)), strength)


def gain_per_doubling(fit: CurveFit, n: Any) -> np.ndarray:
    """y(2N) - y(N) on the fitted curve."""
    n = np.asarray(n, dtype=float)
    return fit.predict(2 * n) - fit.predict(n)


def n_sat_power(a: np.ndarray, alpha: np.ndarray, eps: float = 0.01, n_max: float = _N_MAX) -> np.ndarray:
    """Closed form of ``n_sat`` for the power law, vectorised over parameter arrays."""
    a, alpha = np.asarray(a, dtype=float), np.asarray(alpha, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n = (a * (1 - 2.0 ** (-alpha)) / eps) ** (1 / alpha)
    n = np.where(a <= 0, 1.0, np.maximum(n, 1.0))
    return np.where(n > n_max, np.inf, n)


def n_sat(fit: CurveFit, eps: float = 0.01, n_max: float = _N_MAX) -> float:
    """Smallest N from which on every doubling of data gains less than eps: y(2N') - y(N') < eps.

    eps is in score units (0.01 = one point). The power law's gain only falls, so this is where it
    crosses eps (closed form). The rectified law's gain first rises (flat start) then falls; N_sat is
    the root after its peak (brentq in log N). Returns 1.0 when the gain never reaches eps, ``inf``
    when it is still >= eps at ``n_max`` (default 1e9 examples: "not within any plausible range"),
    and NaN for a failed fit. Values beyond the measured N are extrapolations.
    """
    if not fit.ok:
        return math.nan
    if fit.form == "power":
        return float(n_sat_power(fit.params["A"], fit.params["alpha"], eps, n_max))
    if fit.params["B"] <= 0:
        return 1.0

    def excess(u: Any) -> Any:
        return gain_per_doubling(fit, np.exp(u)) - eps

    u = np.linspace(0.0, math.log(n_max), 600)
    g = excess(u)
    above = np.flatnonzero(g >= 0)
    if above.size == 0:
        return 1.0
    last = above[-1]
    if last == u.size - 1:
        return math.inf
    return float(math.exp(optimize.brentq(lambda v: float(excess(v)), u[last], u[last + 1], xtol=1e-10)))


def pgr(student: Any, floor: Any, ceiling: Any, min_gap: float = 1e-3) -> Any:
    """Performance gap recovered, (student - floor) / (ceiling - floor); NaN where |gap| < min_gap.

    Works on floats or arrays (broadcast). min_gap (score units, default 0.1 point) guards against a
    teacher no better than the untrained student, where the ratio is meaningless.
    """
    s, f, c = (np.asarray(v, dtype=float) for v in (student, floor, ceiling))
    gap = c - f
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.abs(gap) < min_gap, np.nan, (s - f) / gap)
    return float(out) if out.ndim == 0 else out
