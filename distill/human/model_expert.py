"""A model as stand-in expert: any generation backend, shown the reference answer, does the human work.

For dry runs before paying people: a stronger model (or any served one) edits drafts, marks the first
wrong step or picks the better draft. Its rows are always labelled ``simulated: true`` and
``expert: model:<name>``, and are priced with the recipe's ``experts.times`` as if a person had done
the work, so the report's expert-hour axis means what it will mean with people. A reply that cannot
be read (no step number, no A/B/neither, an empty edit) yields no row; its seconds still count.
"""
from __future__ import annotations

import re

from distill.human.annotation import Task
from distill.human.expert import Action
from distill.human.primitives import Work, row_of
from distill.recipe.schema import Experts, Generation

HEAD = "Problem: {prompt}\nReference answer: {answer}\n"
TEMPLATES = {
    "edited": HEAD + "Draft solution: {draft}\nRewrite the draft into a correct solution in the same "
                     "step format. Corrected solution:",
    "first_error": HEAD + "Draft steps:\n{steps}\nReply with the number of the first wrong step, or 0 if "
                          "every step is right. First wrong step:",
    "picked": HEAD + "Draft A: {draft}\nDraft B: {draft_b}\nWhich draft is better? Reply A, B or neither. "
                     "Better draft:",
}
_NUMBER = re.compile(r"\d+")
_PICK = re.compile(r"\b(A|B|neither)\b", re.IGNORECASE)


def render(task: Task) -> str:
    draft_b = task.drafts[1]["completion"] if len(task.drafts) > 1 else ""
    return TEMPLATES[task.primitive].format(prompt=task.prompt, answer=task.meta.get("answer", ""),
                                            draft=task.drafts[0]["completion"], draft_b=draft_b,
                                            steps=task.numbered_steps)


def read_reply(primitive: str, text: str, task: Task, seconds: float) -> Action | None:
    """The action a reply describes, or None when it cannot be read."""
    if primitive == "edited":
        line = text.strip().splitlines()[0].strip() if text.strip() else ""
        return Action("edit", seconds, completion=line) if line else None
    if primitive == "first_error":
        match = _NUMBER.search(text)
        count = len(task.drafts[0]["completion"].split(";"))
        if match is None or int(match.group()) > count:
            return None
        number = int(match.group())
        return Action("mark", seconds, mark=None if number == 0 else number - 1)
    match = _PICK.search(text)
    return None if match is None else Action("pick", seconds, choice=match.group(1).lower())


class ModelExpert:
    simulated = True  # a model is never a person, whatever it is told

    def __init__(self, experts: Experts):
        self.experts = experts
        self.name = f"model:{experts.model.model}"

    def work(self, tasks: list[Task], backend=None) -> Work:
        from distill.generation.backends import Request, Sampling, make_backend

        primitive = tasks[0].primitive if tasks else "edited"
        gen = Generation(backend=self.experts.backend, max_new_tokens=self.experts.max_new_tokens,
                         temperature=0.0)
        owned = backend is None
        backend = backend or make_backend(self.experts.backend, self.experts.model, gen)
        try:
            requests = [Request(t.id, 0, render(t), 0) for t in tasks]
            replies = backend.generate(requests, Sampling.from_config(gen)) if requests else []
        finally:
            if owned:
                backend.close()
        seconds = {"edited": self.experts.times.edit_s, "first_error": self.experts.times.mark_s,
                   "picked": self.experts.times.pick_s}[primitive]
        out = Work(primitive)
        for task, reply in zip(tasks, replies):
            out.items += 1
            action = read_reply(primitive, reply.text, task, seconds)
            row = None if action is None else row_of(primitive, task.drafts, task.meta, action, self)
            if row is None:
                out.discarded_s += seconds
            else:
                out.rows.append(row)
        return out
