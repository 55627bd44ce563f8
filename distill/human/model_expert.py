"""A model as stand-in expert: any generation backend, shown the reference answer, does the human work.

For dry runs before paying people: a stronger model (or any served one) edits drafts, marks the first
wrong step or picks the better draft. Its rows are always labelled ``simulated: true`` and
``expert: model:<name>``, and are priced with the recipe's ``experts.times`` as if a person had done
the work, so the report's expert-hour axis means what it will mean with people. A reply that cannot
be read (no step number, no A/B/neither, an empty edit) yields no row; its seconds still count.
"""
from __future__ import annotations

from distill.human.annotation import AnnotationTask
from distill.human.expert import Action
from distill.human.primitives import Work, primitive_of
from distill.recipe.schema import Experts, Generation


def render(task: AnnotationTask) -> str:
    """The model expert's prompt for one task (each primitive's ``prompt`` template)."""
    draft_b = task.drafts[1]["completion"] if len(task.drafts) > 1 else ""
    return primitive_of(task.primitive).prompt.format(prompt=task.prompt, answer=task.meta.get("answer", ""),
                                                      draft=task.drafts[0]["completion"], draft_b=draft_b,
                                                      steps=task.numbered_steps)


def read_reply(primitive: str, text: str, task: AnnotationTask, seconds: float) -> Action | None:
    """The action a reply describes, or None when it cannot be read."""
    return primitive_of(primitive).read_reply(text, task, seconds)


class ModelExpert:
    simulated = True  # a model is never a person, whatever it is told

    def __init__(self, experts: Experts):
        self.experts = experts
        self.name = f"model:{experts.model.model}"

    def work(self, tasks: list[AnnotationTask], backend=None) -> Work:
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
        kind = primitive_of(primitive)
        seconds = getattr(self.experts.times, kind.time)
        out = Work(primitive)
        for task, reply in zip(tasks, replies):
            action = kind.read_reply(reply.text, task, seconds)
            out.add(None if action is None else kind.row(task.drafts, task.meta, action, self), seconds)
        return out
