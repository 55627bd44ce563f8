"""The ``edited`` primitive: the expert corrects one teacher draft where it is wrong.

Its row is the corrected solution; ``meta.draft`` keeps the text before the edit, so an edit that
changed something is also a preference pair (edit over draft). Label Studio shows the draft
pre-filled in the TextArea ``solution`` (result ``type: textarea``, ``value.text``); Argilla asks a
TextQuestion ``solution`` whose suggestion is the draft.
"""
from __future__ import annotations

from collections.abc import Sequence

from distill.human.annotation import ImportRowError
from distill.human.expert import Action
from distill.human.primitives import Primitive, row_meta


class Edited(Primitive):
    name = "edited"
    time = "edit_s"
    question = "solution"
    label_config = '<TextArea name="solution" toName="prompt" editable="true" rows="4" required="true"/>'
    prompt = ("Problem: {prompt}\nReference answer: {answer}\nDraft solution: {draft}\nRewrite the draft "
              "into a correct solution in the same step format. Corrected solution:")
    pair_key = "draft_id"

    def simulate(self, expert, drafts: Sequence[dict]) -> Action:
        return expert.edit(drafts[0]["id"], drafts[0]["prompt"], drafts[0]["completion"])

    def row(self, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict:
        draft = drafts[0]
        return {"id": draft["id"], "prompt": draft["prompt"], "completion": action.completion,
                "origin": "edited",
                "meta": row_meta(meta, expert, action, draft["id"], draft=draft["completion"])}

    def suggestion(self, task) -> str:
        return task.drafts[0]["completion"]

    def label_studio_action(self, result, task, seconds: float, where) -> Action:
        text = result("solution", "textarea").get("text")
        if not isinstance(text, list) or not text or not all(isinstance(t, str) for t in text):
            raise ImportRowError(*where, f"solution text {text!r:.60} is not a list of strings")
        return Action("edit", seconds, completion="\n".join(text).strip())

    def argilla_question(self, tasks) -> dict:
        return {"type": "text", "name": "solution"}

    def argilla_action(self, value, task, seconds: float, where) -> Action:
        if not isinstance(value, str) or not value.strip():
            raise ImportRowError(*where, f"solution {value!r:.60} is not a non-empty string")
        return Action("edit", seconds, completion=value.strip())

    def read_reply(self, text: str, task, seconds: float) -> Action | None:
        line = text.strip().splitlines()[0].strip() if text.strip() else ""
        return Action("edit", seconds, completion=line) if line else None


PRIMITIVE = Edited()
