"""Curve fits, N_sat and PGR on synthetic learning curves with known parameters.

Run: pytest tests/unit/test_saturation.py -q
"""

import math

import numpy as np
import pytest

from evals.analysis.saturation import (
    CurveFit,
    RunScore,
    compare_fits,
    fit_batch,
    fit_power,
    fit_rectified,
    gain_per_doubling,
    n_sat,
    n_sat_power,
    pgr,
)

pytestmark = pytest.mark.unit

LADDER = np.array([125, 250, 500, 1000, 2000, 4000, 8000], dtype=float)
N = np.repeat(LADDER, 3)  # 3 seeds per size


def power_curve(n, y_inf, a, alpha):
    return y_inf - a * np.asarray(n, dtype=float) ** (-alpha)


def rectified_curve(n, y_inf, b, d_l, beta):
    return y_inf - b / (d_l + np.asarray(n, dtype=float) ** beta)


@pytest.mark.parametrize("y_inf,a,alpha", [(0.80, 4.47, 0.5), (0.70, 20.0, 0.8), (0.90, 2.0, 0.3)])
def test_power_fit_recovers_known_parameters(y_inf, a, alpha):
    # Noise SD 0.01 (1 point). Over 300 simulated sweeps the estimator's SD was 0.006-0.012 for
    # y_inf and 0.04 for alpha; tolerances are ~3.5 SD: y_inf within 0.04, alpha within 0.15.
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = power_curve(N, y_inf, a, alpha) + rng.normal(0, 0.01, N.size)
        fit = fit_power(N, y)
        assert fit.ok and fit.form == "power" and fit.n_points == N.size
        assert abs(fit.y_inf - y_inf) < 0.04
        assert abs(fit.params["alpha"] - alpha) < 0.15
        assert fit.sse < 2 * N.size * 0.01**2  # residuals at the noise level
        assert np.allclose(fit.predict(LADDER), power_curve(LADDER, **_power_kw(fit)), atol=1e-12)


def _power_kw(fit):
    return {"y_inf": fit.params["y_inf"], "a": fit.params["A"], "alpha": fit.params["alpha"]}


def test_noise_free_power_fit_is_exact():
    fit = fit_power(N, power_curve(N, 0.8, 4.47, 0.5))
    assert fit.y_inf == pytest.approx(0.8, abs=1e-5)
    assert fit.params["alpha"] == pytest.approx(0.5, rel=1e-4)
    assert fit.params["A"] == pytest.approx(4.47, rel=1e-3)


def test_rectified_fit_recovers_flat_start_and_wins_by_aicc():
    # A curve with a long flat start (D_l = 400 ~ N^beta at N = 400): the power law cannot bend.
    rng = np.random.default_rng(2)
    y = rectified_curve(N, 0.75, 300.0, 400.0, 1.0) + rng.normal(0, 0.005, N.size)
    rect, power = fit_rectified(N, y), fit_power(N, y)
    assert rect.ok and abs(rect.y_inf - 0.75) < 0.03
    assert abs(rect.params["beta"] - 1.0) < 0.25
    cmp = compare_fits(rect, power)
    assert cmp.preferred == "rectified" and cmp.delta_aicc > 10 and cmp.strength == "decisive"
    assert cmp.weight > 0.99


def test_power_data_does_not_favour_the_rectified_form():
    rng = np.random.default_rng(3)
    y = power_curve(N, 0.8, 4.47, 0.5) + rng.normal(0, 0.01, N.size)
    cmp = compare_fits(fit_power(N, y), fit_rectified(N, y))
    # the extra parameter buys nothing: the power law wins or the two are indistinguishable
    assert cmp.preferred == "power" or cmp.strength == "indistinguishable"


def test_fit_batch_matches_single_fits():
    rng = np.random.default_rng(4)
    ys = power_curve(N, 0.8, 4.47, 0.5) + rng.normal(0, 0.01, (6, N.size))
    batch = fit_batch("power", N, ys)
    rect = fit_batch("rectified", N, ys)
    for i, y in enumerate(ys):
        single = fit_power(N, y)
        assert batch["y_inf"][i] == pytest.approx(single.y_inf, abs=2e-4)
        assert batch["alpha"][i] == pytest.approx(single.params["alpha"], abs=2e-3)
        assert batch["sse"][i] <= single.sse * 1.001
        assert rect["sse"][i] <= fit_rectified(N, y).sse * 1.01


def test_bounds_keep_the_asymptote_a_score():
    # a curve still rising steeply at the top would extrapolate past 1.0
    y = power_curve(N, 1.4, 3.0, 0.2)
    fit = fit_power(N, y)
    assert fit.y_inf <= 1.0 and "y_inf at bound 1.0" in fit.note


def test_n_sat_power_matches_the_closed_form():
    fit = fit_power(N, power_curve(N, 0.8, 4.47, 0.5))
    a, alpha = fit.params["A"], fit.params["alpha"]
    analytic = (a * (1 - 2 ** (-alpha)) / 0.01) ** (1 / alpha)
    got = n_sat(fit, eps=0.01)
    assert got == pytest.approx(analytic, rel=1e-9)
    assert float(gain_per_doubling(fit, got)) == pytest.approx(0.01, rel=1e-6)
    assert float(gain_per_doubling(fit, 0.9 * got)) > 0.01 > float(gain_per_doubling(fit, 1.1 * got))
    assert n_sat(fit, eps=0.005) > got  # a stricter threshold saturates later


def test_n_sat_from_noisy_fit_is_close_to_the_true_value():
    truth = float(n_sat_power(4.47, 0.5, 0.01))  # ~17,100: extrapolated beyond N = 8,000
    rng = np.random.default_rng(5)
    curves = power_curve(N, 0.8, 4.47, 0.5) + rng.normal(0, 0.005, (5, N.size))
    got = [n_sat(fit_power(N, y)) for y in curves]
    assert np.all(np.abs(np.log(np.array(got) / truth)) < math.log(1.5))


def test_n_sat_rectified_is_the_root_after_the_flat_start():
    fit = CurveFit("rectified", {"y_inf": 0.75, "B": 300.0, "D_l": 400.0, "beta": 1.0}, 0.0, 0.0, 21, True)
    got = n_sat(fit, eps=0.01)
    assert float(gain_per_doubling(fit, got)) == pytest.approx(0.01, abs=1e-9)
    later = np.geomspace(got * 1.01, 1e8, 200)
    assert np.all(gain_per_doubling(fit, later) < 0.01)
    # the flat start: tiny gains at small N do not count as saturation
    assert float(gain_per_doubling(fit, 2.0)) < 0.01 and got > 1000
    # with D_l = 0 the rectified law is the power law, and so is its N_sat
    as_power = CurveFit("rectified", {"y_inf": 0.8, "B": 4.47, "D_l": 0.0, "beta": 0.5}, 0.0, 0.0, 21, True)
    assert n_sat(as_power) == pytest.approx(float(n_sat_power(4.47, 0.5)), rel=1e-6)


def test_n_sat_edges():
    flat = fit_power(N, np.full(N.size, 0.3))
    assert flat.ok and flat.params["A"] == 0 and "flat" in flat.note
    assert np.allclose(flat.predict([10, 1e6]), 0.3)
    assert n_sat(flat) == 1.0
    slow = CurveFit("power", {"y_inf": 1.0, "A": 3.0, "alpha": 0.02}, 0.0, 0.0, 21, True)
    assert n_sat(slow) == math.inf  # still gaining >= 1 point per doubling at N = 1e9
    assert n_sat(slow, n_max=1e300) < math.inf


def test_degenerate_inputs_give_a_clear_result():
    few = fit_power([100, 100, 200, 200], [0.1, 0.12, 0.2, 0.21])
    assert not few.ok and "needs >= 3 distinct N, got 2" in few.note
    assert np.isnan(few.predict([100])).all() and math.isnan(n_sat(few))
    rect = fit_rectified([100, 200, 400], [0.1, 0.2, 0.25])
    assert not rect.ok and "needs >= 4 distinct N" in rect.note
    cmp = compare_fits(few, fit_power([100, 200, 400], [0.1, 0.2, 0.25]))
    assert cmp.preferred is None and "not comparable" in cmp.strength
    assert fit_power([100, 200, 400], [0.1, 0.2, 0.25]).aicc == math.inf  # 3 points: no AICc
    with pytest.raises(ValueError, match=r"n has 3 values but y has 2"):
        fit_power([1, 2, 3], [0.1, 0.2])


def test_pgr_and_its_guard():
    assert pgr(0.6, 0.1, 0.9) == pytest.approx(0.625)
    assert pgr(0.95, 0.1, 0.9) > 1  # a student above the teacher
    assert math.isnan(pgr(0.5, 0.4, 0.4005))  # teacher no better than the floor
    out = pgr(np.array([0.1, 0.5, 0.9]), 0.1, np.array([0.9, 0.9, 0.1]))
    assert out[0] == 0 and out[1] == pytest.approx(0.5) and math.isnan(out[2])


def test_run_records_are_validated():
    run = RunScore.from_mapping({"arm": "hybrid-50", "fraction": 0.5, "n": 1000, "seed": 0, "score": 0.62,
                                 "items": [1, 0, 1], "feasible": True, "cost": {"train_s": 10}})
    assert run.items == (1, 0, 1) and run.cost.train_s == 10
    with pytest.raises(ValueError, match="score 62.0 outside"):
        RunScore.from_mapping({"arm": "x", "n": 1, "score": 62.0})
    with pytest.raises(ValueError, match="unknown keys"):
        RunScore.from_mapping({"arm": "x", "n": 1, "score": 0.5, "acc": 0.5})
