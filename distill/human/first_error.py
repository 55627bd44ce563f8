"""The ``first_error`` primitive: the expert points at the first wrong step of one teacher draft.

Its row is the draft itself; ``meta.learn_chars`` is the characters before the first wrong step (absent:
no mark, all learnable) with ``mark_step``, its step number, or ``mark_span``, its characters where
labels mark text (CHAMP). Label Studio asks for the step's number in ``first_error`` (``type:
number``, ``value.number``; 0: every step is right); Argilla a LabelQuestion ``first_error``
(``none`` or a step number).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from distill.human.annotation import ImportRowError
from distill.human.expert import Action, step_offset, steps
from distill.human.primitives import Primitive, row_meta

_NUMBER = re.compile(r"\d+")


def first_error_row(draft: dict, meta: dict, action: Action, expert,
                    span: tuple[int, int] | None = None) -> dict:
    """``span``: the wrong step's characters, where labels mark text rather than a step number (CHAMP)."""
    if span is not None:
        extra = {"learn_chars": span[0], "mark_span": list(span)}
    elif action.mark is None:
        extra = {}
    else:
        extra = {"learn_chars": step_offset(draft["completion"], action.mark), "mark_step": action.mark}
    return {"id": draft["id"], "prompt": draft["prompt"], "completion": draft["completion"],
            "origin": "first_error", "meta": row_meta(meta, expert, action, draft["id"], **extra)}


def _labels(task) -> list[str]:
    return ["none"] + [str(i + 1) for i in range(len(steps(task.drafts[0]["completion"])))]


class FirstError(Primitive):
    name = "first_error"
    time = "mark_s"
    question = "first_error"
    label_config = ('<Text name="steps" value="$steps"/>\n'
                    '  <Number name="first_error" toName="prompt" min="0" required="true"/>')
    prompt = ("Problem: {prompt}\nReference answer: {answer}\nDraft steps:\n{steps}\nReply with the number "
              "of the first wrong step, or 0 if every step is right. First wrong step:")

    def simulate(self, expert, drafts: Sequence[dict]) -> Action:
        return expert.mark(drafts[0]["id"], drafts[0]["prompt"], drafts[0]["completion"])

    def row(self, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict:
        return first_error_row(drafts[0], meta, action, expert)

    def label_studio_action(self, result, task, seconds: float, where) -> Action:
        number = result("first_error", "number").get("number")
        count = len(steps(task.drafts[0]["completion"]))
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= count:
            raise ImportRowError(*where, f"first_error={number!r} is not a step number in 0..{count}")
        return Action("mark", seconds, mark=None if number == 0 else number - 1)

    def argilla_question(self, tasks) -> dict:
        most = max((len(_labels(t)) for t in tasks), default=1)
        return {"type": "label_selection", "name": "first_error",
                "labels": ["none"] + [str(i) for i in range(1, most)]}

    def argilla_action(self, value, task, seconds: float, where) -> Action:
        if value not in _labels(task):
            raise ImportRowError(*where, f"first_error {value!r} is not one of {_labels(task)}")
        return Action("mark", seconds, mark=None if value == "none" else int(value) - 1)

    def read_reply(self, text: str, task, seconds: float) -> Action | None:
        match = _NUMBER.search(text)
        count = len(task.drafts[0]["completion"].split(";"))
        if match is None or int(match.group()) > count:
            return None
        number = int(match.group())
        return Action("mark", seconds, mark=None if number == 0 else number - 1)


PRIMITIVE = FirstError()
