import math

from evals.analysis.formatting import ci, fmt_n, number
from evals.analysis.uncertainty import Interval


def test_number_points_by_default_and_non_finite_values():
    assert number(0.1234) == "12.3"
    assert number(0.05, signed=True) == "+5.0"
    assert number(0.8, digits=0, suffix="%") == "80%"
    assert number(1234.0, scale=1.0, digits=0, grouped=True) == "1,234"
    assert (number(math.inf), number(-math.inf), number(math.nan)) == ("∞", "–", "–")


def test_fmt_n_is_short():
    assert (fmt_n(500), fmt_n(1500), fmt_n(2_000_000), fmt_n(math.inf)) == ("500", "1.5k", "2M", "∞")


def test_ci_shapes():
    iv = Interval(0.05, -0.01, 0.12, 0.9)
    assert ci(iv) == "5.0 [-1.0, 12.0]"
    assert ci(iv, signed=True) == "+5.0 [-1.0, +12.0]"
    assert ci(iv, signed=True, with_estimate=False) == "[-1.0, +12.0]"
    assert ci((1.5, 0.5, 2.5), scale=1.0, signed=True, unit=" points per hour") == \
        "+1.5 points per hour [+0.5, +2.5]"
    assert ci(Interval(3000, 1500, math.inf, 0.9), fmt=fmt_n) == "3k [1.5k, ∞]"


def test_ci_without_an_estimate():
    assert ci(None) == "–"
    assert ci(Interval(math.nan, 0.0, 1.0, 0.9)) == "–"
