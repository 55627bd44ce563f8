"""Argilla round trip: drafts out as dataset records with ``suggestions``, ``responses`` back in.

Records are written the way Argilla 2's ``dataset.records.to_json`` writes them (a list of
``{"id", "fields", "metadata", "suggestions", "responses", "vectors", "_server_id"}``, suggestions
keyed by question name with ``value``/``score``/``agent``, responses keyed by question name as lists
of ``{"value", "user_id"}`` (+ ``status`` in newer versions)); ``settings.json`` lists the fields
and questions to create the dataset with (``rg.Settings``). Each primitive's question is declared in
the primitive's own module (``argilla_question``, ``argilla_action``; ``distill.human.primitives``).

Argilla records no annotation time (argilla-io/argilla#2134 was closed unbuilt), so imported rows
are priced with the recipe's ``experts.times`` and say so in ``meta.time_source``.
"""
from __future__ import annotations

from pathlib import Path

from distill.artifacts import atomic_write_json
from distill.human.annotation import AnnotationTask, ImportRowError, read_json_list
from distill.human.primitives import Work, primitive_of
from distill.recipe.schema import ExpertTimes

SKIPPED = ("discarded", "draft")  # response statuses that are not finished work


def export_records(tasks: list[AnnotationTask], folder: Path) -> Path:
    kind = primitive_of(tasks[0].primitive if tasks else "edited")
    records = []
    for t in tasks:
        fields = {"prompt": t.prompt, "draft": t.drafts[0]["completion"], "steps": t.numbered_steps,
                  **kind.fields(t)}
        text = kind.suggestion(t)
        suggestions = ({} if text is None
                       else {kind.question: {"value": text, "score": None, "agent": "teacher"}})
        records.append({"id": t.id, "fields": fields, "metadata": {"answer": str(t.meta.get("answer", ""))},
                        "suggestions": suggestions, "responses": {}, "vectors": {}, "_server_id": None})
    field_names = ["prompt", "draft", "steps", *(kind.fields(tasks[0]) if tasks else {})]
    atomic_write_json(folder / "settings.json", {"fields": [{"type": "text", "name": n} for n in field_names],
                                                 "questions": [kind.argilla_question(tasks)]})
    return atomic_write_json(folder / "records.json", records)


def _response(record: dict, question: str, path, i: int, rid) -> dict:
    responses = record.get("responses")
    if not isinstance(responses, dict):
        raise ImportRowError(path, i, rid, f"responses is {type(responses).__name__}, expected a mapping")
    done = [r
            for r in responses.get(question) or [] if isinstance(r, dict) and r.get("status") not in SKIPPED]
    if not done:
        raise ImportRowError(path, i, rid, f"no submitted response to {question!r}")
    return done[0]


class _Annotator:
    simulated = False

    def __init__(self, user: object):
        self.name = f"argilla:{user}"


def import_records(path: Path, tasks: list[AnnotationTask], times: ExpertTimes) -> Work:
    by_id = {t.id: t for t in tasks}
    kind = primitive_of(tasks[0].primitive if tasks else "edited")
    seconds = getattr(times, kind.time)
    records = read_json_list(path, "Argilla records are a list")
    work, seen = Work(kind.name), set()
    for i, record in enumerate(records):
        rid = record.get("id") if isinstance(record, dict) else None
        if rid not in by_id or rid in seen:
            raise ImportRowError(path, i, rid,
                                 "id names no exported record" if rid not in by_id
                                 else "record appears twice")
        seen.add(rid)
        task = by_id[rid]
        response = _response(record, kind.question, path, i, rid)
        action = kind.argilla_action(response.get("value"), task, seconds, (path, i, task.id))
        made = kind.row(task.drafts, task.meta, action, _Annotator(response.get("user_id")))
        if made is not None:
            made["meta"].update(time_source="recipe experts.times (Argilla records no annotation time)")
        work.add(made, action.seconds)
    return work
