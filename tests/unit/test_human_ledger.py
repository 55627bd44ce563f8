"""The human-time ledger: expert seconds once per unique example, however many epochs repeat it.
Run: pytest tests/unit/test_human_ledger.py -q"""
from __future__ import annotations

import pytest

from distill.human.ledger import per_row_overhead, run_seconds
from distill.mixing import Arm, Pool, Wall, plan_mix

pytestmark = pytest.mark.unit


def test_repeated_entries_cost_once():
    seconds = {"edited": {"a": 18.0, "b": 18.0, "c": 20.0}}
    entries = [("edited", "a"), ("edited", "b"), ("edited", "a"), ("edited", "a"), ("synthetic", "x"),
               ("synthetic", "x")]
    out = run_seconds(entries, seconds)
    assert out["human_s"] == pytest.approx(36.0)
    assert out["sources"]["edited"] == {"rows": 2, "human_s": 36.0}
    assert out["sources"]["synthetic"] == {"rows": 1, "human_s": 0.0}  # raw teacher rows cost no expert time


def test_a_run_over_many_epochs_pays_for_its_pool_once():
    ids = tuple(f"h{i}" for i in range(50))
    pools = {"edited": Pool("edited", "human", ids, (10,) * 50),
             "synthetic": Pool("synthetic", "synthetic", ("s",), (9,))}
    arm = Arm(name="edited", fraction=0.0, human="edited")  # all human: reads no synthetic pool
    plan = plan_mix(arm, 200, 0, pools, wall=Wall(policy="repeat", max_epochs=4))  # four passes over 50 rows
    assert plan.feasible and len(plan.entries) == 200 and max(e.epoch for e in plan.entries) == 3
    seconds = {"edited": {i: 18.0 for i in ids}}
    once = run_seconds(((e.source, e.id) for e in plan.entries), seconds)
    assert once["human_s"] == pytest.approx(50 * 18.0)  # not 200 * 18
    smaller = plan_mix(arm, 30, 0, pools, wall=Wall(policy="repeat", max_epochs=4))
    assert (run_seconds(((e.source, e.id) for e in smaller.entries), seconds)["human_s"]
            == pytest.approx(30 * 18.0))


def test_discarded_work_is_spread_over_kept_rows():
    overhead = per_row_overhead(60.0, 20)  # ten picks of neither at 6 s, 20 rows kept
    out = run_seconds([("picked", "a"), ("picked", "b"), ("picked", "a")], {"picked": {"a": 6.0, "b": 6.0}},
                      {"picked": overhead})
    assert out["human_s"] == pytest.approx(2 * (6.0 + 3.0))
    assert per_row_overhead(5.0, 0) == 0.0
