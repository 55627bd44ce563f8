"""Numbers and intervals as report text: the one formatter behind every table and verdict sentence.

Scores are fractions and print as points (×100, one decimal) unless told otherwise. A value that is not
finite prints as ∞ (+inf: e.g. a saturation N that is never reached) or – (NaN, -inf: not measured).
Lives in ``evals.analysis`` because the verdicts written here use it as well as ``evals.report``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from evals.analysis.uncertainty import Interval

MISSING = "–"


def number(x: float, *, scale: float = 100.0, digits: int = 1, signed: bool = False, suffix: str = "",
           grouped: bool = False) -> str:
    """``scale * x`` with ``digits`` decimals, a + on positives when ``signed``, thousands commas when
    ``grouped``, then ``suffix`` (e.g. "%")."""
    if not math.isfinite(x):
        return "∞" if x == math.inf else MISSING
    spec = f"{'+' if signed else ''}{',' if grouped else ''}.{digits}f"
    return f"{scale * x:{spec}}{suffix}"


def fmt_n(n: float) -> str:
    """A size N, short: 1500 -> '1.5k', 2_000_000 -> '2M'."""
    if not math.isfinite(n):
        return "∞" if n == math.inf else MISSING
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.0f}"


def ci(iv: Interval | Sequence[float] | None, *, scale: float = 100.0, digits: int = 1, signed: bool = False,
       grouped: bool = False, suffix: str = "", unit: str = "", fmt: Callable[[float], str] | None = None,
       with_estimate: bool = True) -> str:
    """``estimate[unit] [lower, upper]``, each number as ``number`` writes it (or by ``fmt``: ``fmt_n`` for
    sizes); – when there is no interval or its estimate is not finite.

    ``iv`` is an ``Interval`` or a plain ``(estimate, lower, upper)``; ``unit`` follows the estimate
    only ("+1.2 points per hour [+0.3, +2.0]"), ``suffix`` every number ("80% [70%, 90%]"). Without
    ``with_estimate`` only ``[lower, upper]``: for tables that give the estimate a column of its own.
    """
    if iv is None:
        return MISSING
    est, lower, upper = (iv.estimate, iv.lower, iv.upper) if isinstance(iv, Interval) else iv
    if not math.isfinite(est):
        return MISSING
    f = fmt or (lambda x: number(x, scale=scale, digits=digits, signed=signed, grouped=grouped,
                                 suffix=suffix))
    bounds = f"[{f(lower)}, {f(upper)}]"
    return f"{f(est)}{unit} {bounds}" if with_estimate else bounds
