"""The teachers report's comparison on hand-made per-teacher results: gaps, crossover movement, slope.
Run: pytest tests/unit/test_teachers_report.py -q"""
from __future__ import annotations

import pytest

from evals.analysis.teachers import asymptote_slope, teacher_rows, verdict

pytestmark = pytest.mark.unit


def _iv(est, lo, hi):
    return {"estimate": est, "lower": lo, "upper": hi, "level": 0.9}


def _teacher(name, acc, y_inf, cross_n):
    items = [1] * int(acc * 200) + [0] * (200 - int(acc * 200))
    fits = [{"arm": "human", "fraction": 0.0, "y_inf": _iv(0.9, 0.85, 0.95),
             "teacher_gap": _iv(acc - 0.9, -0.2, 0.2)},
            {"arm": "synthetic", "fraction": 1.0, "y_inf": _iv(y_inf, y_inf - 0.02, y_inf + 0.02),
             "teacher_gap": _iv(acc - y_inf, acc - y_inf - 0.02, acc - y_inf + 0.02)}]
    cross = [{"leader": "human", "trailer": "synthetic", "n": _iv(*cross_n), "share_crossing": 0.9,
              "data_agrees": True}] if cross_n else []
    best = [{"n": 2000, "arm": "human", "fraction": 0.0, "within_noise": False,
             "score": _iv(0.9, 0.85, 0.95)}]
    return {"name": name, "ceiling": {"score": acc, "items": items}, "floor": 0.0, "human_pool": 500,
            "unit": "examples", "fits": fits, "crossovers": cross, "best_per_n": best, "report": "x"}


def test_a_crossover_that_moves_out_with_teacher_quality_is_said_so():
    records = {"teachers": [_teacher("weak", 0.4, 0.35, (300, 250, 350)),
                            _teacher("strong", 0.9, 0.7, (1500, 1200, 1800))]}
    rows = teacher_rows(records, n_boot=200)
    assert rows[0]["gap"]["estimate"] == pytest.approx(0.05) and rows[0]["ceiling_iv"].contains(0.4)
    text = verdict(rows, asymptote_slope(rows))
    assert "moves out with teacher quality" in text and "below the teacher" in text
    slope = asymptote_slope(rows)
    assert slope.estimate == pytest.approx(0.7) and slope.upper < 1.0


def test_overlapping_crossovers_are_within_noise_and_missing_ones_are_named():
    records = {"teachers": [_teacher("weak", 0.4, 0.4, (300, 200, 900)), _teacher("mid", 0.7, 0.69, None),
                            _teacher("strong", 0.9, 0.9, (500, 250, 2000))]}
    text = verdict(teacher_rows(records, n_boot=200), None)
    assert "within noise (the intervals overlap)" in text
    assert "mid: no crossover in the measured range" in text and "at the teacher within noise" in text


def test_students_near_zero_are_flagged_as_a_floor_effect():
    records = {"teachers": [_teacher("weak", 0.4, 0.02, None), _teacher("strong", 0.9, 0.03, None)]}
    rows = teacher_rows(records, n_boot=100)
    for r in rows:
        r["best_measured"] = 0.05
    assert "floor effect" in verdict(rows, None)
    assert ("floor "
            "effect" not in verdict(teacher_rows({"teachers": [_teacher("weak", 0.4, 0.35, None)]}), None))


def test_the_synthetic_mean_at_the_largest_n_is_stated_against_the_teacher():
    t = _teacher("mid", 0.7, 0.6, None)
    t["at_largest"] = [{"arm": "human", "n": 2000.0, "diff": _iv(0.25, 0.2, 0.3), "plateau": "above"},
                       {"arm": "synthetic", "n": 2000.0, "diff": _iv(-0.1, -0.14, -0.06), "plateau": "below"}]
    rows = teacher_rows({"teachers": [t, _teacher("strong", 0.9, 0.8, None)]}, n_boot=100)
    assert rows[0]["synthetic_at_n"]["diff"]["estimate"] == -0.1 and rows[1]["synthetic_at_n"] is None
    text = verdict(rows, None)
    assert ("At its largest N (2,000) it scores -10.0 [-14.0, -6.0] points against the teacher "
            "(below it)." in text)


def test_a_slope_from_some_teachers_names_them_and_no_crossover_at_all_is_said_plainly():
    wide = _teacher("weak", 0.4, 0.5, None)
    wide["fits"][1]["y_inf"] = _iv(0.5, 0.4, 1.0)  # not identified: left out of the slope
    rows = teacher_rows({"teachers": [wide, _teacher("mid", 0.6, 0.6, None),
                                      _teacher("strong", 0.8, 0.8, None)]},
                        n_boot=100)
    text = verdict(rows, asymptote_slope(rows))
    assert "Across the 2 teachers whose asymptote is identified (mid, strong)" in text
    assert "No teacher's synthetic-only arm meets the human arm in the measured range" in text
