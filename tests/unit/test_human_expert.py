"""The simulated expert and the human-data primitives it produces.
Run: pytest tests/unit/test_human_expert.py -q"""
from __future__ import annotations

import pytest

from distill.human.expert import SimulatedExpert, first_wrong_step, pick_rule, prefer, step_offset, steps
from distill.human.primitives import drafts_by_prompt, simulate
from distill.recipe.schema import ArithmeticWorld, ExpertTimes
from distill.sources import meta_of, normalise
from distill.world.arithmetic import Problem, problems, solve, verify

pytestmark = pytest.mark.unit
TIMES = ExpertTimes(write_s=30, edit_s=18, mark_s=12, pick_s=6)


def _problems(count: int = 60) -> list[Problem]:
    return problems(ArithmeticWorld(min_digits=2, max_digits=3), "prompts", count)


def _corrupt(text: str, k: int) -> str:
    """Change step k's result (one digit more), keep every other step: the first error is at k."""
    parts = steps(text)
    head, _, value = parts[k].rpartition("=") if "=" in parts[k] else ("A", ":", parts[k][2:])
    parts[k] = f"{head}={int(value) + 1}" if "=" in parts[k] else f"A:{int(value) + 1}"
    return ";".join(parts)


def test_edits_are_correct_solutions():
    expert = SimulatedExpert(TIMES)
    for i, p in enumerate(_problems()):
        right = solve(p.a, p.op, p.b)
        draft = _corrupt(right, i % len(steps(right)))
        action = expert.edit(p.id, p.prompt, draft)
        assert action.completion == right and verify(p, action.completion)
        assert action.seconds == TIMES.edit_s
        assert expert.edit(p.id, p.prompt, right).completion == right  # a right draft stays as it is


def test_marks_fall_on_the_first_wrong_step():
    expert = SimulatedExpert(TIMES)
    for p in _problems():
        right = solve(p.a, p.op, p.b)
        n = len(steps(right))
        for k in range(n):
            draft = _corrupt(right, k)
            if k + 1 < n:  # a second error later must not move the mark
                draft = _corrupt(draft, k + 1)
            assert expert.mark(p.id, p.prompt, draft).mark == k
        assert expert.mark(p.id, p.prompt, right).mark is None
        assert expert.mark(p.id, p.prompt, ";".join(steps(right)[:-1])).mark == n - 1  # stopped early
        assert expert.mark(p.id, p.prompt, right + ";A:0").mark == n  # ran on


def test_picks_follow_the_rule():
    p = _problems(1)[0]
    right = solve(p.a, p.op, p.b)
    last = len(steps(right)) - 1
    wrong_early, wrong_late = _corrupt(_corrupt(right, 0), last), _corrupt(right, last)  # both: wrong answers
    expert = SimulatedExpert(TIMES)
    assert expert.pick(p.id, p.prompt, wrong_late, right).choice == "b"  # only b has the right answer
    assert expert.pick(p.id, p.prompt, right, wrong_early).choice == "a"
    assert expert.pick(p.id, p.prompt, wrong_early, wrong_late).choice == "neither"  # both answers wrong
    assert expert.pick(p.id, p.prompt, wrong_early, wrong_late).completion is None
    # two right answers: more correct leading steps wins (a lucky answer after a wrong step loses)
    lucky = ";".join(steps(wrong_early)[:-1] + steps(right)[-1:])
    assert pick_rule(lucky, right, right) == "b" and pick_rule(right, lucky, right) == "a"
    assert pick_rule(right, right, right) == "a"  # a tie goes to the first shown


def test_preferences_rank_two_wrong_or_two_right_drafts_by_wrong_steps_then_length():
    p = _problems(1)[0]
    right = solve(p.a, p.op, p.b)
    last = len(steps(right)) - 1
    # 1 and 2 wrong steps, wrong answers
    once, twice = _corrupt(right, last), _corrupt(_corrupt(right, 0), last)
    expert = SimulatedExpert(TIMES)
    for a, b, better in ((twice, once, "b"), (once, twice, "a")):
        action = expert.pick(p.id, p.prompt, a, b)
        assert action.choice == "neither" and action.prefer == better  # not trained on, but ranked
    lucky = ";".join(steps(twice)[:-1] + steps(right)[-1:])  # right answer after one wrong step
    assert prefer(lucky, right, right) == "b" and prefer(twice, lucky, right) == "b"  # the answer comes first
    longer = once + ";A:0"  # the same wrong steps plus one more: fewer wrong steps wins before length
    assert prefer(longer, once, right) == "b" and prefer(once, once, right) == "a"
    # erred: flipped
    assert SimulatedExpert(TIMES, error_rate=1.0).pick(p.id, p.prompt, twice, once).prefer == "a"


def test_picks_of_neither_give_pairs_but_no_rows():
    from distill.human.pairs import preference_pairs

    probs = _problems(6)
    drafts = []
    for p in probs:  # two wrong drafts per prompt: the first less wrong than the second
        right = solve(p.a, p.op, p.b)
        last = len(steps(right)) - 1
        for sample, text in enumerate((_corrupt(right, last), _corrupt(_corrupt(right, 0), last))):
            drafts.append(normalise({"id": f"{p.id}#{sample}", "prompt": p.prompt, "completion": text,
                                     "origin": "synthetic", "meta": {"prompt_id": p.id, "sample": sample}}))
    work = simulate("picked", drafts_by_prompt(drafts, meta_of), SimulatedExpert(TIMES), meta_of, 6)
    assert work.rows == [] and len(work.preferences) == 6 and work.summary()["preference_only"] == 6
    assert work.summary()["human_s"] == 6 * TIMES.pick_s  # the seconds are the picks', counted once
    pairs = preference_pairs("picked", work.preferences, drafts)
    assert [p["id"] for p in pairs] == [f"{q.id}#0" for q in probs] and not any(p["row"] for p in pairs)


def test_an_expert_with_error_rate_one_gets_every_wrong_draft_wrong():
    p = _problems(1)[0]
    right = solve(p.a, p.op, p.b)
    draft = _corrupt(right, 0)
    bad = SimulatedExpert(TIMES, error_rate=1.0)
    assert bad.edit(p.id, p.prompt, draft).completion == draft  # missed the error
    assert bad.mark(p.id, p.prompt, draft).mark is None
    assert bad.pick(p.id, p.prompt, draft, right).choice == "a"
    half = SimulatedExpert(TIMES, error_rate=0.5, seed=3)
    erred = [half.edit(q.id, q.prompt, _corrupt(solve(q.a, q.op, q.b), 0)).erred for q in _problems(200)]
    assert 60 < sum(erred) < 140
    assert (erred
            == [half.edit(q.id, q.prompt, _corrupt(solve(q.a, q.op, q.b), 0)).erred for q in _problems(200)])


def _drafts(probs: list[Problem]) -> list[dict]:
    """Two teacher drafts per prompt, shaped like merged generation rows: a wrong one, then a right one."""
    rows = []
    for p in probs:
        right = solve(p.a, p.op, p.b)
        for sample, text in enumerate((_corrupt(right, 1), right)):
            rows.append(normalise({"id": f"{p.id}#{sample}", "prompt": p.prompt, "completion": text,
                                   "origin": "synthetic", "meta": {"answer": p.answer, "prompt_id": p.id,
                                                                   "sample": sample}}))
    return rows


@pytest.mark.parametrize("primitive", ["edited", "first_error", "picked"])
def test_primitive_rows_carry_provenance_and_human_seconds(primitive):
    probs = _problems(10)
    groups = drafts_by_prompt(_drafts(probs), meta_of)
    work = simulate(primitive, groups, SimulatedExpert(TIMES), meta_of, limit=8)
    assert work.items == 8 and len(work.rows) == 8
    seconds = {"edited": 18, "first_error": 12, "picked": 6}[primitive]
    for row, p in zip(work.rows, probs):
        normalise(row)  # a valid source row of its origin
        meta = row["meta"]
        assert row["origin"] == primitive and meta["human_s"] == seconds and meta["simulated"] is True
        assert meta["expert"] == "simulated-expert" and meta["draft_id"].startswith(p.id)
        if primitive == "edited":
            assert row["completion"] == solve(p.a, p.op, p.b) and meta["draft"] != row["completion"]
        if primitive == "first_error":  # draft kept, learnable up to the start of its step 1
            assert row["completion"] == groups[p.id][0]["completion"]
            assert meta["mark_step"] == 1 and meta["learn_chars"] == step_offset(row["completion"], 1)
        if primitive == "picked":
            assert row["id"] == f"{p.id}#1" and meta["rejected_id"] == f"{p.id}#0"
    assert work.summary()["human_s"] == pytest.approx(8 * seconds)


def test_a_pick_of_neither_keeps_no_row_but_its_seconds():
    p = _problems(1)[0]
    right = solve(p.a, p.op, p.b)
    last = len(steps(right)) - 1  # both drafts end in a wrong answer
    rows = [normalise({"id": f"{p.id}#{s}", "prompt": p.prompt,
                       "completion": _corrupt(_corrupt(right, s), last),
                       "origin": "synthetic", "meta": {"prompt_id": p.id, "sample": s}}) for s in (0, 1)]
    work = simulate("picked", drafts_by_prompt(rows, meta_of), SimulatedExpert(TIMES), meta_of, 5)
    assert work.rows == [] and work.discarded_s == 6 and work.summary()["human_s"] == 6


def test_first_wrong_step_of_identical_texts_is_none():
    assert first_wrong_step("1+2=3;A:3", "1+2=3;A:3") is None
    assert first_wrong_step("", "1+2=3;A:3") == 0
