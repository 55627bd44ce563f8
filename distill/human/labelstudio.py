"""Label Studio round trip: drafts out as tasks with ``predictions``, finished ``annotations`` back in.

The task file is Label Studio's basic JSON import format (a list of ``{"data": ..., "predictions":
[...]}``; https://labelstud.io/guide/predictions), made for the labeling config written beside it
(``label_config.xml``). The import reads Label Studio's JSON export (https://labelstud.io/guide/task_format):
each task with its ``annotations``, whose ``result`` holds the regions and ``lead_time`` the seconds
the annotator spent. Each primitive's question (its ``label_config``, what its result holds) is
declared in the primitive's own module (``distill.human.primitives``).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.human.annotation import AnnotationTask, ImportRowError, check_seconds, read_json_list
from distill.human.primitives import Work, primitive_of


def _textarea(name: str, text: str) -> dict:
    return {"from_name": name, "to_name": "prompt", "type": "textarea", "value": {"text": [text]}}


def export_tasks(tasks: list[AnnotationTask], folder: Path) -> Path:
    """``tasks.json`` (drafts as predictions) and ``label_config.xml`` for a project of one primitive."""
    kind = primitive_of(tasks[0].primitive if tasks else "edited")
    out = []
    for t in tasks:
        draft = t.drafts[0]["completion"]
        data = {"distill_id": t.id, "primitive": kind.name, "prompt": t.prompt, "draft": draft,
                "steps": t.numbered_steps, "answer": str(t.meta.get("answer", "")), **kind.fields(t)}
        text = kind.suggestion(t)
        predictions = ([] if text is None
                       else [{"model_version": "teacher", "result": [_textarea(kind.question, text)]}])
        out.append({"data": data, "predictions": predictions})
    view = (f'<View>\n  <Text name="prompt" value="$prompt"/>\n  <Text name="draft" value="$draft"/>\n'
            f'  {kind.label_config}\n</View>\n')
    atomic_write_text(folder / "label_config.xml", view)
    return atomic_write_json(folder / "tasks.json", out)


def _result(ann: dict, where: tuple, name: str, kind: str) -> dict:
    """The value of the annotation's region ``name``, which must be of type ``kind``."""
    for region in ann.get("result") or []:
        if isinstance(region, dict) and region.get("from_name") == name:
            if region.get("type") != kind or not isinstance(region.get("value"), dict):
                raise ImportRowError(*where, f"result {name!r} is not a {kind} region: {region!r:.80}")
            return region["value"]
    raise ImportRowError(*where, f"annotation has no {name!r} result")


def _annotation(task: dict, path, i: int, tid) -> dict:
    done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        raise ImportRowError(path, i, tid, "no finished annotation (all missing or cancelled)")
    return done[-1]


class _Annotator:
    simulated = False

    def __init__(self, who: object):
        self.name = f"label-studio:{who.get('email', who.get('id')) if isinstance(who, dict) else who}"


def import_annotations(path: Path, tasks: list[AnnotationTask]) -> Work:
    """Read a Label Studio JSON export of these tasks into a primitive's rows (one bad row: an error)."""
    by_id = {t.id: t for t in tasks}
    kind = primitive_of(tasks[0].primitive if tasks else "edited")
    exported = read_json_list(path, "a Label Studio JSON export is a list of tasks")
    work, seen = Work(kind.name), set()
    for i, row in enumerate(exported):
        tid = (row.get("data", {}).get("distill_id")
               if isinstance(row, dict) and isinstance(row.get("data"), dict) else None)
        if tid not in by_id:
            raise ImportRowError(path, i, tid, "data.distill_id is missing or names no exported task")
        if tid in seen:
            raise ImportRowError(path, i, tid, "task appears twice in the export")
        seen.add(tid)
        task = by_id[tid]
        ann = _annotation(row, path, i, tid)
        seconds = check_seconds(ann.get("lead_time"), path, i, task.id, "lead_time")
        where = (path, i, tid)
        action = kind.label_studio_action(partial(_result, ann, where), task, seconds, where)
        work.add(kind.row(task.drafts, task.meta, action, _Annotator(ann.get("completed_by"))),
                 action.seconds)
    return work
