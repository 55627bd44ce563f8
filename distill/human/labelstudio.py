"""Label Studio round trip: drafts out as tasks with ``predictions``, finished ``annotations`` back in.

The task file is Label Studio's basic JSON import format (a list of ``{"data": ..., "predictions":
[...]}``; https://labelstud.io/guide/predictions), made for the labeling config written beside it
(``label_config.xml``). The import reads Label Studio's JSON export (https://labelstud.io/guide/task_format):
each task with its ``annotations``, whose ``result`` holds the regions and ``lead_time`` the seconds
the annotator spent. Per primitive the annotator:

- ``edited``: corrects the pre-filled draft in the TextArea ``solution`` (result ``type: textarea``,
  ``value.text``);
- ``first_error``: enters the number of the first wrong step in ``first_error`` (``type: number``,
  ``value.number``; 0: every step is right);
- ``picked``: chooses ``A``, ``B`` or ``neither`` in ``pick`` (``type: choices``, ``value.choices``).
"""
from __future__ import annotations

from pathlib import Path

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.human.annotation import ImportRowError, Task, check_seconds, read_json_list
from distill.human.expert import Action, steps
from distill.human.primitives import Work, row_of

CONFIG = {
    "edited": '<TextArea name="solution" toName="prompt" editable="true" rows="4" required="true"/>',
    "first_error": '<Text name="steps" value="$steps"/>\n  <Number name="first_error" toName="prompt" min="0" required="true"/>',
    "picked": ('<Text name="draft_b" value="$draft_b"/>\n  <Choices name="pick" toName="prompt" required="true">'
               '<Choice value="A"/><Choice value="B"/><Choice value="neither"/></Choices>'),
}
_CHOICE = {"A": "a", "B": "b", "neither": "neither"}


def _textarea(name: str, text: str) -> dict:
    return {"from_name": name, "to_name": "prompt", "type": "textarea", "value": {"text": [text]}}


def export_tasks(tasks: list[Task], folder: Path) -> Path:
    """``tasks.json`` (drafts as predictions) and ``label_config.xml`` for a project of one primitive."""
    primitive = tasks[0].primitive if tasks else "edited"
    out = []
    for t in tasks:
        draft = t.drafts[0]["completion"]
        data = {"distill_id": t.id, "primitive": primitive, "prompt": t.prompt, "draft": draft,
                "steps": t.numbered_steps, "answer": str(t.meta.get("answer", ""))}
        predictions = [{"model_version": "teacher", "result": [_textarea("solution", draft)]}]
        if primitive == "picked":
            data["draft_b"] = t.drafts[1]["completion"]
        out.append({"data": data, "predictions": predictions if primitive == "edited" else []})
    view = (f'<View>\n  <Text name="prompt" value="$prompt"/>\n  <Text name="draft" value="$draft"/>\n'
            f'  {CONFIG[primitive]}\n</View>\n')
    atomic_write_text(folder / "label_config.xml", view)
    return atomic_write_json(folder / "tasks.json", out)


def _result(ann: dict, name: str, kind: str, path, i: int, tid) -> object:
    for region in ann.get("result") or []:
        if isinstance(region, dict) and region.get("from_name") == name:
            if region.get("type") != kind or not isinstance(region.get("value"), dict):
                raise ImportRowError(path, i, tid, f"result {name!r} is not a {kind} region: {region!r:.80}")
            return region["value"]
    raise ImportRowError(path, i, tid, f"annotation has no {name!r} result")


def _annotation(task: dict, path, i: int, tid) -> dict:
    done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        raise ImportRowError(path, i, tid, "no finished annotation (all missing or cancelled)")
    return done[-1]


class _Annotator:
    simulated = False

    def __init__(self, who: object):
        self.name = f"label-studio:{who.get('email', who.get('id')) if isinstance(who, dict) else who}"


def _action(primitive: str, ann: dict, task: Task, path, i: int) -> Action:
    seconds = check_seconds(ann.get("lead_time"), path, i, task.id, "lead_time")
    if primitive == "edited":
        text = _result(ann, "solution", "textarea", path, i, task.id).get("text")
        if not isinstance(text, list) or not text or not all(isinstance(t, str) for t in text):
            raise ImportRowError(path, i, task.id, f"solution text {text!r:.60} is not a list of strings")
        return Action("edit", seconds, completion="\n".join(text).strip())
    if primitive == "first_error":
        number = _result(ann, "first_error", "number", path, i, task.id).get("number")
        count = len(steps(task.drafts[0]["completion"]))
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= count:
            raise ImportRowError(path, i, task.id, f"first_error={number!r} is not a step number in 0..{count}")
        return Action("mark", seconds, mark=None if number == 0 else number - 1)
    choices = _result(ann, "pick", "choices", path, i, task.id).get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or choices[0] not in _CHOICE:
        raise ImportRowError(path, i, task.id, f"pick {choices!r} is not one of [['A'], ['B'], ['neither']]")
    return Action("pick", seconds, choice=_CHOICE[choices[0]])


def import_annotations(path: Path, tasks: list[Task]) -> Work:
    """Read a Label Studio JSON export of these tasks into a primitive's rows (one bad row: an error)."""
    by_id = {t.id: t for t in tasks}
    primitive = tasks[0].primitive if tasks else "edited"
    exported = read_json_list(path, "a Label Studio JSON export is a list of tasks")
    work, seen = Work(primitive), set()
    for i, row in enumerate(exported):
        tid = row.get("data", {}).get("distill_id") if isinstance(row, dict) and isinstance(row.get("data"), dict) else None
        if tid not in by_id:
            raise ImportRowError(path, i, tid, "data.distill_id is missing or names no exported task")
        if tid in seen:
            raise ImportRowError(path, i, tid, "task appears twice in the export")
        seen.add(tid)
        task = by_id[tid]
        ann = _annotation(row, path, i, tid)
        action = _action(primitive, ann, task, path, i)
        who = _Annotator(ann.get("completed_by"))
        meta = task.meta
        made = row_of(primitive, task.drafts, meta, action, who)
        work.items += 1
        if made is None:
            work.discarded_s += action.seconds
        else:
            work.rows.append(made)
    return work
