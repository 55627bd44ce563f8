"""Argilla round trip: drafts out as dataset records with ``suggestions``, ``responses`` back in.

Records are written the way Argilla 2's ``dataset.records.to_json`` writes them (a list of
``{"id", "fields", "metadata", "suggestions", "responses", "vectors", "_server_id"}``, suggestions
keyed by question name with ``value``/``score``/``agent``, responses keyed by question name as lists
of ``{"value", "user_id"}`` (+ ``status`` in newer versions)); ``settings.json`` lists the fields
and questions to create the dataset with (``rg.Settings``). Questions per primitive: ``solution``
(TextQuestion, the suggestion is the draft), ``first_error`` (LabelQuestion: ``none`` or a step
number), ``pick`` (LabelQuestion: ``a``, ``b``, ``neither``).

Argilla records no annotation time (argilla-io/argilla#2134 was closed unbuilt), so imported rows
are priced with the recipe's ``experts.times`` and say so in ``meta.time_source``.
"""
from __future__ import annotations

from pathlib import Path

from distill.artifacts import atomic_write_json
from distill.human.annotation import ImportRowError, Task, read_json_list
from distill.human.expert import Action, steps
from distill.human.primitives import Work, row_of
from distill.recipe.schema import ExpertTimes

QUESTION = {"edited": "solution", "first_error": "first_error", "picked": "pick"}
SKIPPED = ("discarded", "draft")  # response statuses that are not finished work


def _labels(task: Task) -> list[str]:
    return ["none"] + [str(i + 1) for i in range(len(steps(task.drafts[0]["completion"])))]


def export_records(tasks: list[Task], folder: Path) -> Path:
    primitive = tasks[0].primitive if tasks else "edited"
    records = []
    for t in tasks:
        fields = {"prompt": t.prompt, "draft": t.drafts[0]["completion"], "steps": t.numbered_steps}
        suggestions = {}
        if primitive == "picked":
            fields["draft_b"] = t.drafts[1]["completion"]
        elif primitive == "edited":
            suggestions = {"solution": {"value": fields["draft"], "score": None, "agent": "teacher"}}
        records.append({"id": t.id, "fields": fields, "metadata": {"answer": str(t.meta.get("answer", ""))},
                        "suggestions": suggestions, "responses": {}, "vectors": {}, "_server_id": None})
    most = max((len(_labels(t)) for t in tasks), default=1)
    question = {"edited": {"type": "text", "name": "solution"},
                "first_error": {"type": "label_selection", "name": "first_error",
                                "labels": ["none"] + [str(i) for i in range(1, most)]},
                "picked": {"type": "label_selection", "name": "pick", "labels": ["a", "b", "neither"]}}[primitive]
    field_names = ["prompt", "draft", "steps"] + (["draft_b"] if primitive == "picked" else [])
    atomic_write_json(folder / "settings.json", {"fields": [{"type": "text", "name": n} for n in field_names],
                                                 "questions": [question]})
    return atomic_write_json(folder / "records.json", records)


def _response(record: dict, question: str, path, i: int, rid) -> dict:
    responses = record.get("responses")
    if not isinstance(responses, dict):
        raise ImportRowError(path, i, rid, f"responses is {type(responses).__name__}, expected a mapping")
    done = [r for r in responses.get(question) or [] if isinstance(r, dict) and r.get("status") not in SKIPPED]
    if not done:
        raise ImportRowError(path, i, rid, f"no submitted response to {question!r}")
    return done[0]


class _Annotator:
    simulated = False

    def __init__(self, user: object):
        self.name = f"argilla:{user}"


def _action(primitive: str, value: object, task: Task, times: ExpertTimes, path, i: int) -> Action:
    if primitive == "edited":
        if not isinstance(value, str) or not value.strip():
            raise ImportRowError(path, i, task.id, f"solution {value!r:.60} is not a non-empty string")
        return Action("edit", times.edit_s, completion=value.strip())
    if primitive == "first_error":
        if value not in _labels(task):
            raise ImportRowError(path, i, task.id, f"first_error {value!r} is not one of {_labels(task)}")
        return Action("mark", times.mark_s, mark=None if value == "none" else int(value) - 1)
    if value not in ("a", "b", "neither"):
        raise ImportRowError(path, i, task.id, f"pick {value!r} is not one of ['a', 'b', 'neither']")
    return Action("pick", times.pick_s, choice=value)


def import_records(path: Path, tasks: list[Task], times: ExpertTimes) -> Work:
    by_id = {t.id: t for t in tasks}
    primitive = tasks[0].primitive if tasks else "edited"
    records = read_json_list(path, "Argilla records are a list")
    work, seen = Work(primitive), set()
    for i, record in enumerate(records):
        rid = record.get("id") if isinstance(record, dict) else None
        if rid not in by_id or rid in seen:
            raise ImportRowError(path, i, rid, "id names no exported record" if rid not in by_id else "record appears twice")
        seen.add(rid)
        task = by_id[rid]
        response = _response(record, QUESTION[primitive], path, i, rid)
        action = _action(primitive, response.get("value"), task, times, path, i)
        who = _Annotator(response.get("user_id"))
        extra = {"time_source": "recipe experts.times (Argilla records no annotation time)"}
        made = row_of(primitive, task.drafts, task.meta, action, who)
        work.items += 1
        if made is None:
            work.discarded_s += action.seconds
        else:
            made["meta"].update(extra)
            work.rows.append(made)
    return work
