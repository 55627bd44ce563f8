"""The embedded arithmetic world: determinism, held-out test split, verifier.
Run: pytest tests/unit/test_world.py -q"""
from __future__ import annotations

import pytest

from distill.recipe.schema import ArithmeticWorld
from distill.world import build_task
from distill.world.arithmetic import extract_answer, problems, solve, verify

pytestmark = pytest.mark.unit


def test_same_seed_same_world_other_seed_other_world():
    w = ArithmeticWorld(test_size=50)
    assert problems(w, "human", 100) == problems(w, "human", 100)
    assert problems(w, "human", 100) != problems(ArithmeticWorld(test_size=50, seed=1), "human", 100)


def test_streams_are_unlimited_and_prefix_stable():
    w = ArithmeticWorld(test_size=50)
    assert problems(w, "prompts", 300)[:100] == problems(w, "prompts", 100)


def test_test_split_is_held_out_of_training_streams():
    w = ArithmeticWorld(min_digits=1, max_digits=1, test_size=30)  # tiny space: collisions are certain
    test = {p.key for p in problems(w, "test", 30)}
    for stream in ("human", "prompts", "teacher"):
        assert not test & {p.key for p in problems(w, stream, 200)}


@pytest.mark.parametrize("a, op, b, expected", [
    (347, "+", 589, "7+9=16;4+8+1=13;3+5+1=9;A:936"),
    (532, "-", 187, "12-7=5;12-8=4;4-1=3;A:345"),
    (999, "+", 1, "9+1=10;9+0+1=10;9+0+1=10;A:1000"),
    (100, "-", 1, "10-1=9;9-0=9;0-0=0;A:99"),
    (12, "+", 30, "2+0=2;1+3=4;A:42"),
])
def test_human_solutions(a, op, b, expected):
    assert solve(a, op, b) == expected


def test_every_human_solution_is_correct_and_verified():
    w = ArithmeticWorld(test_size=50)
    for p in problems(w, "human", 500):
        assert extract_answer(solve(p.a, p.op, p.b)) == p.answer
        assert verify(p, solve(p.a, p.op, p.b))


def test_verifier_rejects_wrong_and_malformed_answers():
    task = build_task(ArithmeticWorld(test_size=10))
    row = task.prompts(1)[0]
    right = row["meta"]["answer"]
    assert task.verify(row, f"1+1=2;A:{right}")
    assert not task.verify(row, f"1+1=2;A:{int(right) + 1}")
    assert not task.verify(row, "1+1=2;")  # no answer at all
    assert not task.verify({"meta": {}}, f"A:{right}")


def test_task_rows_have_the_source_schema():
    task = build_task(ArithmeticWorld(human_pool=20, test_size=10))
    human, test = task.human(), task.test()
    assert len(human) == 20 and len(test) == 10
    assert {"id", "prompt", "completion", "origin", "meta"} <= set(human[0])
    assert {r["origin"] for r in human} == {"human"}
