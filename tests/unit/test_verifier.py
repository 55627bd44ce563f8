"""Step marks as a verifier: PRM labels stop at the first mark as configured, outcome-only labels,
and the reranking rules (best-of-n by min / product of step scores, majority vote, localisation).
Run: pytest tests/unit/test_verifier.py -q"""
from __future__ import annotations

import pytest

from distill.human.expert import SimulatedExpert
from distill.human.verifier import (
    best_of_n,
    first_low_step,
    localisation_accuracy,
    majority_vote,
    outcome_labels,
    prm_labels,
    solution_score,
)
from distill.recipe.schema import ExpertTimes

pytestmark = pytest.mark.unit
RIGHT = "7+9=16;4+8+1=13;A:136"


@pytest.mark.parametrize("mark, after, expected", [
    (None, "drop", [1, 1, 1]),
    (0, "drop", [0, None, None]),
    (1, "drop", [1, 0, None]),
    (1, "bad", [1, 0, 0]),
    (2, "drop", [1, 1, 0]),
    (3, "drop", [1, 1, 0]),  # marked past the end: it stopped where a step was due
])
def test_prm_labels_stop_at_the_first_mark_as_configured(mark, after, expected):
    assert prm_labels(RIGHT, mark, after) == expected


def test_labels_of_the_simulated_experts_marks():
    expert = SimulatedExpert(ExpertTimes())
    draft = "7+8=15;9+4+1=15;A:155"  # step 1 wrong (the right one: 7+8=15;9+4+1=14;A:145), and the answer
    mark = expert.mark("x", "Q:97+48=", draft).mark
    assert (mark == 1 and prm_labels(draft, mark) == [1, 0, None]
            and prm_labels(draft, mark, "bad") == [1, 0, 0])
    with pytest.raises(ValueError, match="after_mark"):
        prm_labels(draft, mark, "good")


def test_outcome_only_labels_carry_the_answer_to_every_step():
    assert outcome_labels(RIGHT, True) == [1, 1, 1] and outcome_labels(RIGHT, False) == [0, 0, 0]


def test_reranking_rules():
    scores = [[0.9, 0.2, 0.9], [0.6, 0.6, 0.6], [0.95, 0.95, 0.3]]
    assert [solution_score(s, "min") for s in scores] == pytest.approx([0.2, 0.6, 0.3])
    assert best_of_n([solution_score(s, "min") for s in scores]) == 1
    assert best_of_n([solution_score(s, "product") for s in scores]) == 2  # 0.27 > 0.216 > 0.162
    assert best_of_n([0.5, 0.5]) == 0  # ties: the first shown
    assert majority_vote(["3", "4", "4", "3"]) == 0 and majority_vote([None, "5", "6", "6"]) == 2
    assert majority_vote([None, None]) == 0
    assert first_low_step([0.9, 0.4, 0.1]) == 1 and first_low_step([0.9, 0.8]) is None
    assert localisation_accuracy([1, None, 0], [1, None, 2]) == pytest.approx(2 / 3)


def test_the_verifier_step_adds_to_the_dag_and_its_settings_change_only_it():
    from pathlib import Path

    from distill.pipeline.plan import plan
    from distill.recipe import load_recipe

    recipe = Path(__file__).resolve().parents[2] / "recipes/human-effort.yaml"
    base = {s.id: s for s in plan(load_recipe(recipe))}
    on = {s.id: s for s in plan(load_recipe(recipe, ["verifier={arm: edited}"]))}
    assert {s.kind for i, s in base.items() if i not in on} == {"report"}  # nothing else moves
    step = next(s for s in on.values() if s.kind == "verifier")
    assert step.labels == {"role": "verifier", "arm": "edited", "n": 500, "seed": 0}
    assert (on[step.deps[1]].labels["arm"] == "edited"
            and on[step.deps[0]].config["primitive"] == "first_error")
    more = {s.id: s for s in plan(load_recipe(recipe, ["verifier={arm: edited, samples: 4}"]))}
    assert {s.kind for i, s in more.items() if i not in on} == {"verifier", "report"}


def test_bad_verifier_settings_fail_at_load_time():
    from pathlib import Path

    from distill.recipe import RecipeError, load_recipe

    recipe = Path(__file__).resolve().parents[2] / "recipes/human-effort.yaml"
    for override, message in (("verifier={arm: nope}", "not an arm"), ("experts=null", "experts section"),
                              ("verifier={after_mark: keep}", "after_mark")):
        extra = ["verifier={}"] if override == "experts=null" else []
        with pytest.raises(RecipeError, match=message):
            load_recipe(recipe, [override, *extra])
