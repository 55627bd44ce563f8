"""Measured claims about a sweep, each with its interval: the verdict is built only from these.

- ``seed_noise``: the seed-to-seed standard deviation of every cell (arm, N) and their median: how
  precise the instrument is;
- ``versus_teacher``: each arm's mean at its largest N minus the teacher's score (paired bootstrap
  over seeds and items), and where it plateaus relative to the teacher;
- ``wall``: a human-only arm's gain per doubling of N up to the human pool and past it (repeats);
- ``convergence``: runs retrained with a larger budget against the same seeds' regular runs.

A difference is "outside noise" only when its interval excludes zero. Pure numpy; no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evals.analysis.records import Check
from evals.analysis.uncertainty import Analysis, ArmBootstrap, Interval, interval


def outside(iv: Interval | None) -> bool:
    """The interval excludes zero (NaN bounds never do)."""
    return iv is not None and (iv.lower > 0 or iv.upper < 0)


@dataclass(frozen=True)
class CellNoise:
    arm: str
    n: float
    seeds: int
    sd: float  # sample SD of the seeds' scores (NaN with one seed)


def seed_noise(result: Analysis) -> list[CellNoise]:
    return [CellNoise(ab.arm, float(n), len(v), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan)
            for ab in result.arms.values() for n, v in zip(ab.ns, ab.scores_by_n)]


def median_sd(cells: Sequence[CellNoise]) -> float:
    sds = [c.sd for c in cells if math.isfinite(c.sd)]
    return float(np.median(sds)) if sds else math.nan


@dataclass(frozen=True)
class TeacherComparison:
    arm: str
    n: float  # the arm's largest measured N
    diff: Interval  # mean score at n minus the teacher's score
    asymptote_gap: Interval | None  # y_inf minus the teacher; None when y_inf is not identified

    @property
    def plateau(self) -> str:
        """Where the arm levels off against the teacher: 'at', 'below' or 'above' from the fitted
        asymptote; 'not identified' without one (a curve still rising says nothing of its plateau)."""
        iv = self.asymptote_gap
        if iv is None:
            return "not identified"
        return "at" if not outside(iv) else "below" if iv.upper < 0 else "above"


def versus_teacher(result: Analysis, level: float) -> list[TeacherComparison]:
    reps = result.replicates
    if reps.ceiling is None:
        return []
    out = []
    for arm, ab in result.arms.items():
        s = result.summaries[arm]
        dof = reps.dof([arm])
        diff = interval(ab.mean_reps[:, -1] - reps.ceiling_reps, ab.means[-1] - reps.ceiling.score, level,
                        dof)
        gap = None
        if s.identified("y_inf"):
            gap = interval(ab.params["y_inf"] - reps.ceiling_reps, s.fit.y_inf - reps.ceiling.score, level,
                           dof)
        out.append(TeacherComparison(arm, float(ab.ns[-1]), diff, gap))
    return out


@dataclass(frozen=True)
class Wall:
    arm: str
    pool: float
    before: Interval  # points per doubling between the last two N <= pool
    after: Interval  # points per doubling from the pool's N to the first N past it
    drop: Interval  # before - after

    @property
    def binds(self) -> bool:
        return self.drop.lower > 0


def wall(ab: ArmBootstrap, pool: float | None, level: float) -> Wall | None:
    """Gains per doubling of a human-only arm around its pool; None without two N up to the pool
    and one past it."""
    if pool is None:
        return None
    below = np.flatnonzero(ab.ns <= pool)
    above = np.flatnonzero(ab.ns > pool)
    if below.size < 2 or above.size == 0:
        return None
    i, j, k = below[-2], below[-1], above[0]
    per = lambda a, b: (ab.mean_reps[:, b] - ab.mean_reps[:, a]) / math.log2(ab.ns[b] / ab.ns[a])
    point = lambda a, b: (ab.means[b] - ab.means[a]) / math.log2(ab.ns[b] / ab.ns[a])
    dof = ab.replicates.dof([ab.arm])
    before, after = per(i, j), per(j, k)
    return Wall(ab.arm, float(pool), interval(before, point(i, j), level, dof),
                interval(after, point(j, k), level, dof),
                interval(before - after, point(i, j) - point(j, k), level, dof))


@dataclass(frozen=True)
class Convergence:
    arm: str
    n: float
    factor: float  # budget multiple of the check runs
    seeds: int  # seeds retrained
    shift: float  # mean over those seeds of (check score - regular score)
    seed_sd: float  # the cell's seed-to-seed SD (regular runs)
    item_se: float = math.nan  # standard error of one run's score over the test items

    @property
    def noise(self) -> float:
        """The smallest change the instrument resolves for this cell: its seed SD, but never less than
        one score's item standard error (three seeds that agree exactly do not make a score exact)."""
        return max(self.seed_sd, self.item_se) if math.isfinite(self.item_se) else self.seed_sd

    @property
    def converged(self) -> bool:
        return math.isfinite(self.noise) and abs(self.shift) < self.noise

    @property
    def undertrained(self) -> bool:
        """More budget raised the score by its noise or more. A fall that large is not converged either,
        but it says more training hurts, not that the budget is short."""
        return not self.converged and self.shift > 0


def convergence(checks: Sequence[Check], runs: Sequence, cells: Sequence[CellNoise]) -> list[Convergence]:
    """Pair each check run with the regular run of the same arm, N and seed."""
    regular = {(r.arm, r.n, r.seed): r for r in runs}
    sd = {(c.arm, c.n): c.sd for c in cells}
    pairs: dict[tuple, list[tuple[float, float]]] = {}  # per cell: (score change, item SE of the regular run)
    for c in checks:
        run = regular.get((c.arm, c.n, c.seed))
        if run is not None and c.score is not None:
            cell = (c.arm, float(c.n), float(c.factor))
            pairs.setdefault(cell, []).append((c.score - run.score, _item_se(run.items)))
    return [Convergence(arm, n, factor, len(p), float(np.mean([d for d, _ in p])), sd.get((arm, n), math.nan),
                        float(np.mean([se for _, se in p])))
            for (arm, n, factor), p in pairs.items()]


def _item_se(items) -> float:
    """Standard error of a run's mean score over its test items (NaN without per-item scores)."""
    if items is None or len(items) < 2:
        return math.nan
    return float(np.std(items, ddof=1) / math.sqrt(len(items)))


@dataclass(frozen=True)
class Claims:
    """Everything the verdict may state beyond the fits, for one score."""

    score: str  # which score the claims rest on, in words
    cells: tuple[CellNoise, ...]
    teacher: tuple[TeacherComparison, ...]
    walls: tuple[Wall, ...]
    convergence: tuple[Convergence, ...] = ()

    @property
    def median_sd(self) -> float:
        return median_sd(self.cells)


def claims(result: Analysis, *, level: float, pool: float | None, score: str,
           checks: Sequence[Check] = ()) -> Claims:
    cells = seed_noise(result)
    walls = [wall(ab, pool, level) for ab in result.arms.values() if ab.fraction == 0.0]
    return Claims(score, tuple(cells), tuple(versus_teacher(result, level)), tuple(w for w in walls if w),
                  tuple(convergence(checks, result.replicates.runs, cells)))
