"""The ``picked`` primitive: the expert chooses the better of two drafts of one prompt, or neither.

Its row is the chosen draft; ``meta.rejected_id`` names the other, so every pick is a preference pair.
A pick of neither makes no row (its seconds still count), but a ranked one keeps a pair-only
preference (``pair_only`` in its meta). Label Studio shows the second draft (``draft_b``) and asks
``pick`` (``type: choices``: ``A``, ``B`` or ``neither``); Argilla a LabelQuestion ``pick`` (``a``,
``b``, ``neither``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from distill.human.annotation import ImportRowError
from distill.human.expert import Action
from distill.human.primitives import Primitive, row_meta

_CHOICE = {"A": "a", "B": "b", "neither": "neither"}
_PICK = re.compile(r"\b(A|B|neither)\b", re.IGNORECASE)


def _row(better: dict, other: dict, meta: dict, action: Action, expert, **extra) -> dict:
    return {"id": better["id"], "prompt": better["prompt"], "completion": better["completion"],
            "origin": "picked",
            "meta": row_meta(meta, expert, action, better["id"], rejected_id=other["id"], **extra)}


class Picked(Primitive):
    name = "picked"
    shows = 2
    time = "pick_s"
    question = "pick"
    label_config = ('<Text name="draft_b" value="$draft_b"/>\n  <Choices name="pick" toName="prompt" '
                    'required="true"><Choice value="A"/><Choice value="B"/><Choice '
                    'value="neither"/></Choices>')
    prompt = ("Problem: {prompt}\nReference answer: {answer}\nDraft A: {draft}\nDraft B: {draft_b}\nWhich "
              "draft is better? Reply A, B or neither. Better draft:")
    pair_key = "rejected_id"

    def simulate(self, expert, drafts: Sequence[dict]) -> Action:
        first = drafts[0]
        return expert.pick(first["id"], first["prompt"], first["completion"], drafts[1]["completion"])

    def row(self, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict | None:
        if action.choice == "neither":
            return None
        a, b = drafts[0], drafts[1]
        return _row(*((a, b) if action.choice == "a" else (b, a)), meta, action, expert)

    def leftover(self, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict | None:
        """A pick of neither that still ranked its drafts: the less wrong one over the other (pairs only)."""
        a, b = drafts[0], drafts[1]
        if action.choice != "neither" or action.prefer is None or a["completion"] == b["completion"]:
            return None
        return _row(*((a, b) if action.prefer == "a" else (b, a)), meta, action, expert, pair_only=True)

    def fields(self, task) -> dict[str, str]:
        return {"draft_b": task.drafts[1]["completion"]}

    def label_studio_action(self, result, task, seconds: float, where) -> Action:
        choices = result("pick", "choices").get("choices")
        if not isinstance(choices, list) or len(choices) != 1 or choices[0] not in _CHOICE:
            raise ImportRowError(*where, f"pick {choices!r} is not one of [['A'], ['B'], ['neither']]")
        return Action("pick", seconds, choice=_CHOICE[choices[0]])

    def argilla_question(self, tasks) -> dict:
        return {"type": "label_selection", "name": "pick", "labels": ["a", "b", "neither"]}

    def argilla_action(self, value, task, seconds: float, where) -> Action:
        if value not in ("a", "b", "neither"):
            raise ImportRowError(*where, f"pick {value!r} is not one of ['a', 'b', 'neither']")
        return Action("pick", seconds, choice=value)

    def read_reply(self, text: str, task, seconds: float) -> Action | None:
        match = _PICK.search(text)
        return None if match is None else Action("pick", seconds, choice=match.group(1).lower())


PRIMITIVE = Picked()
