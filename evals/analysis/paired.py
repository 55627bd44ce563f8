"""Paired item-level comparisons of two evaluated models, and what a recipe's test set can detect.

Both models are scored on the same test items, so their difference is paired:
- ``mcnemar``: the exact McNemar test. Only discordant items (one right, the other wrong) carry
  information; under "no difference" each is equally likely to favour either model, so the count
  favouring A is Binomial(discordant, 1/2) and the two-sided p-value is the exact binomial one;
- ``paired_difference``: the percentile bootstrap of mean(A) - mean(B), resampling items (one index set
  for both models, so the pairing is kept);
- ``min_detectable``: the smallest true difference between two cells that a two-sided test at
  ``level`` detects with ``power`` (normal approximation), from the item noise of ``n_items`` items at
  score ``p`` (binomial variance, two independently trained models) and seed noise ``seed_sd`` over
  ``seeds`` seeds per cell. Scores are fractions in [0, 1]. Pure numpy/scipy; no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from evals.analysis.uncertainty import Interval, interval


@dataclass(frozen=True)
class McNemar:
    a_only: int  # items A gets right and B wrong
    b_only: int
    p_value: float  # exact two-sided


def _binary(items: Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(items, dtype=float)
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError(f"mcnemar: {name}'s items are not 0/1 (exact match); McNemar needs "
                         "right/wrong items")
    return x.astype(bool)


def mcnemar(a_items: Sequence[float], b_items: Sequence[float]) -> McNemar:
    a, b = _binary(a_items, "A"), _binary(b_items, "B")
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: {a.size} items against {b.size}; the models must share the test items")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    p = 1.0 if n == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(a_only, b_only), n, 0.5)))
    return McNemar(a_only, b_only, p)


def paired_difference(a_items: Sequence[float], b_items: Sequence[float], *, level: float = 0.9,
                      n_boot: int = 2000, seed: int = 0) -> Interval:
    a, b = np.asarray(a_items, dtype=float), np.asarray(b_items, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired_difference: {a.size} items against {b.size}; need the same test items")
    d = a - b
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    return interval(d[idx].mean(axis=1), float(d.mean()), level)


def min_detectable(n_items: int, *, p: float = 0.5, seeds: int = 1, seed_sd: float = 0.0, level: float = 0.9,
                   power: float = 0.8) -> float:
    """Smallest true difference of two cell means detected with ``power`` by a two-sided test at ``level``."""
    if n_items < 1 or seeds < 1:
        raise ValueError(f"min_detectable: n_items={n_items}, seeds={seeds}; both must be >= 1")
    var_one = p * (1 - p) / n_items + seed_sd ** 2 / seeds  # variance of one cell's mean
    z = stats.norm.ppf(1 - (1 - level) / 2) + stats.norm.ppf(power)
    return float(z * math.sqrt(2 * var_one))


def recipe_detectable(runs: Sequence, level: float = 0.9, power: float = 0.8) -> dict | None:
    """The minimum detectable difference between two cells of a sweep: at its test size, its typical
    seeds per cell and its measured median seed SD (None without per-item scores)."""
    lengths = {len(r.items) for r in runs if r.items is not None}
    if len(lengths) != 1:
        return None
    cells: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        cells.setdefault((r.arm, r.n), []).append(r.score)
    seeds = int(np.median([len(v) for v in cells.values()]))
    sds = [float(np.std(v, ddof=1)) for v in cells.values() if len(v) >= 2]
    sd = float(np.median(sds)) if sds else 0.0
    n_items = lengths.pop()
    return {"items": n_items, "seeds": seeds, "seed_sd": sd, "level": level, "power": power,
            "items_only": min_detectable(n_items, seeds=seeds, level=level, power=power),
            "with_seed_noise": min_detectable(n_items, seeds=seeds, seed_sd=sd, level=level, power=power)}
