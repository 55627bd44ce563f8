"""Per-cell intervals: the mean score of one (arm, N) cell over its seeds, as an interval that can hold
the next seed set's mean.

Why not the bootstrap: a cell has 2-3 seeds. Resampling 2 values with replacement gives 4 possible
means, so the percentile interval of a resampled cell mean cannot represent seed-to-seed variance (one
demo cell's second seed set fell outside the first run's 90% interval). The t interval on the seed
means is exact under normal seed noise for any k >= 2 and widens correctly for few seeds (t_1 at 90%
is 6.3, t_2 is 2.9). Its variance has two parts:
- seed noise: s^2 / k, s the SD of the k seed scores of this cell (k - 1 dof). Per cell, not pooled
  over the arm: seed noise is larger at small N (few examples, each seed sees different ones), and a
  pooled SD under-covers exactly the noisy cells;
- item noise: every seed is scored on the same test items, so the item sampling error is shared by the
  seeds and does not show in s. Its variance is the squared standard error of the per-item means over
  the cell's seeds (I - 1 dof).
Each part gets its own t half-width, and the two half-widths add in quadrature. Welch-Satterthwaite
would give the sum one pooled dof, but with 1-2 seed dof and ~300 item dof it lends the item part's
dof to the seed part: when two seeds happen to agree, the interval shrinks to the item SE and missed a
second seed set's mean in 20% of simulated 90% trials (tests/unit/test_cells.py); in quadrature the
seed part keeps t_{k-1}, so coverage is at least that of the seed t interval alone. A cell with one seed has
only the
item part (its seed noise is unmeasured: said so by ``seeds`` = 1 in the caller's table).
Every interval is clipped to the score's range [0, 1] (a fraction correct cannot leave it).
Pure numpy/scipy; no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from evals.analysis.saturation import SCORE_BOUNDS


def clip_to(lower: float, upper: float, bounds: tuple[float, float] = SCORE_BOUNDS) -> tuple[float, float]:
    """An interval's ends inside ``bounds`` (NaN stays NaN)."""
    lo, hi = bounds
    return (lower if math.isnan(lower) else min(max(lower, lo), hi),
            upper if math.isnan(upper) else min(max(upper, lo), hi))


def cell_interval(scores: Sequence[float], items: Sequence[Sequence[float]] | None = None,
                  level: float = 0.9) -> tuple[float, float, float]:
    """(mean, lower, upper) of one cell: t interval over seeds combined with the shared item SE.

    ``items``: one per-item score vector per seed (same item order), or None (seed noise only).
    NaN bounds when there is no noise estimate at all (one seed, no items).
    """
    y = np.asarray(scores, dtype=float)
    if y.size == 0:
        raise ValueError("cell_interval: no scores")
    mean = float(y.mean())
    halves: list[float] = []  # each noise part's own t half-width
    q = (1 + level) / 2
    if y.size >= 2:
        halves.append(float(stats.t.ppf(q, y.size - 1)) * float(y.std(ddof=1)) / math.sqrt(y.size))
    if items is not None:
        a = np.asarray(items, dtype=float)
        per_item = a.mean(axis=0) if a.ndim == 2 else a
        if per_item.size >= 2:
            se = float(per_item.std(ddof=1)) / math.sqrt(per_item.size)
            halves.append(float(stats.t.ppf(q, per_item.size - 1)) * se)
    if not halves:
        return mean, math.nan, math.nan
    half = math.sqrt(sum(h * h for h in halves))
    return (mean, *clip_to(mean - half, mean + half))


def cross_coverage(a: dict, b: dict, level: float = 0.9) -> list[dict]:
    """How two independent seed sets of one sweep agree, cell by cell.

    ``a`` and ``b`` map a cell key (e.g. ``(arm, n)``) to its seeds' ``(score, items)`` pairs (items: the
    per-item score vector, or None). For each cell both sets measured: each set's interval (the rule of
    ``cell_interval``) and whether it holds the other set's cell mean. This is the check a reader can run
    on any two runs of a recipe that differ only in their seeds; for k = 2 seeds per cell the expected rate
    is about 86% at a 90% level, not 90% (see tests/unit/test_cells.py), since the other set's mean carries
    its own seed noise.
    """
    rows = []
    for key in [k for k in a if k in b]:
        (ma, la, ha), (mb, lb, hb) = (cell_interval([s for s, _ in cell], _items(cell), level)
                                      for cell in (a[key], b[key]))
        rows.append({"cell": key, "a": (ma, la, ha), "b": (mb, lb, hb), "seeds": (len(a[key]), len(b[key])),
                     "b_in_a": bool(la <= mb <= ha), "a_in_b": bool(lb <= ma <= hb)})
    return rows


def _items(cell: Sequence[tuple[float, Sequence[float] | None]]) -> list | None:
    items = [i for _, i in cell]
    return None if any(i is None for i in items) else items
