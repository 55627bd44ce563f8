"""A model as stand-in expert: a real (tiny) model behind the hf backend does the work, and every row
it makes says it is simulated. Run: pytest tests/smoke/test_model_expert.py -q"""
from __future__ import annotations

import pytest

from distill.human.annotation import tasks_for
from distill.human.model_expert import ModelExpert, read_reply, render
from distill.human.primitives import drafts_by_prompt
from distill.recipe.schema import Experts, ExpertTimes, ModelSpec
from distill.sources import meta_of, normalise

pytestmark = pytest.mark.smoke


def _tasks(primitive: str):
    rows = [normalise({"id": f"p{i}#{s}", "prompt": f"Q:{10 + i}+{20 + i}=",
                       "completion": f"{i}+{i}={2 * i};A:{30 + 2 * i}",
                       "origin": "synthetic",
                       "meta": {"prompt_id": f"p{i}", "sample": s, "answer": str(30 + 2 * i)}})
            for i in range(4) for s in (0, 1)]
    return tasks_for(primitive, drafts_by_prompt(rows, meta_of), meta_of, limit=4)


@pytest.mark.parametrize("primitive", ["edited", "first_error", "picked"])
def test_a_model_does_the_work_and_is_labelled_simulated(teacher_dir, primitive):
    experts = Experts(kind="model", model=ModelSpec(model=str(teacher_dir)), max_new_tokens=8,
                      times=ExpertTimes(edit_s=18, mark_s=12, pick_s=6))
    work = ModelExpert(experts).work(_tasks(primitive))
    assert work.items == 4
    seconds = {"edited": 18, "first_error": 12, "picked": 6}[primitive]
    assert work.summary()["human_s"] == pytest.approx(4 * seconds)  # unreadable replies cost time too
    for row in work.rows:
        assert row["meta"]["simulated"] is True and row["meta"]["expert"] == f"model:{teacher_dir}"


def test_replies_are_read_by_the_rule_of_each_primitive():
    task = _tasks("first_error")[0]
    assert "Reference answer: 30" in render(task) and "1. 0+0=0" in render(task)
    assert read_reply("first_error", " 2 because", task, 1.0).mark == 1
    assert read_reply("first_error", " 0", task, 1.0).mark is None
    assert read_reply("first_error", " 9", task, 1.0) is None  # no such step
    pick = _tasks("picked")[0]
    assert read_reply("picked", " B.", pick, 1.0).choice == "b"
    assert read_reply("picked", "Neither", pick, 1.0).choice == "neither"
    assert read_reply("picked", "hmm", pick, 1.0) is None
    assert read_reply("edited", "  \n", task, 1.0) is None
