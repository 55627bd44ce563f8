"""PRM800K-style process labels in, as ``first_error`` rows.

Lines follow the released PRM800K format (github.com/openai/prm800k): ``question.problem`` and
``question.pre_generated_steps`` (phase 2: the steps shown), ``label.steps[i].completions[c].rating``
(-1 wrong, 0 neutral, +1 right) with ``chosen_completion``, ``label.total_time`` (milliseconds
spent labelling the solution) and ``label.finish_reason`` (``found_error``, ``solution``,
``bad_problem``, ``give_up``). The first step rated -1 is the first wrong step; a labelling that
ends in ``bad_problem`` or ``give_up`` yields no row, but its time still counts. The export writes
the drafts as such lines with an empty ``label``, for a PRM800K-style labelling tool.
"""
from __future__ import annotations

import json
from pathlib import Path

from distill.artifacts import atomic_write_text
from distill.human.annotation import AnnotationTask, ImportRowError, check_seconds
from distill.human.expert import Action, steps
from distill.human.first_error import first_error_row
from distill.human.primitives import Work

FINISH = ("found_error", "solution", "bad_problem", "give_up")


def export_questions(tasks: list[AnnotationTask], folder: Path) -> Path:
    lines = [json.dumps({"distill_id": t.id, "question": {
        "problem": t.prompt, "ground_truth_answer": str(t.meta.get("answer", "")),
        "pre_generated_steps": steps(t.drafts[0]["completion"])}, "label": None}) for t in tasks]
    return atomic_write_text(folder / "questions.jsonl", "\n".join(lines) + "\n")


class _Labeler:
    simulated = False

    def __init__(self, who: object):
        self.name = f"prm800k:{who}"


def _first_wrong(label: dict, path, i: int, tid) -> int | None:
    if not isinstance(label.get("steps"), list):
        raise ImportRowError(path, i, tid, "label.steps is not a list")
    for k, step in enumerate(label["steps"]):
        chosen = step.get("chosen_completion") if isinstance(step, dict) else None
        completions = step.get("completions") if isinstance(step, dict) else None
        if not isinstance(completions, list) or not completions:
            raise ImportRowError(path, i, tid, f"label.steps[{k}].completions is missing or empty")
        ratings = [c.get("rating") if isinstance(c, dict) else None for c in completions]
        if any(r not in (-1, 0, 1) for r in ratings):
            raise ImportRowError(path, i, tid, f"label.steps[{k}] has a rating outside -1/0/+1: {ratings}")
        rating = ratings[chosen] if isinstance(chosen, int) and 0 <= chosen < len(ratings) else ratings[0]
        if rating == -1:
            return k
    return None


def import_labels(path: Path, tasks: list[AnnotationTask]) -> Work:
    """Each line matched to its draft by ``distill_id``, or else by problem text and steps."""
    by_id = {t.id: t for t in tasks}
    by_text = {(t.prompt, tuple(steps(t.drafts[0]["completion"]))): t for t in tasks}
    work, seen = Work("first_error"), set()
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ImportRowError(path, i, None, f"not JSON ({err.msg})") from None
        q, label = rec.get("question") or {}, rec.get("label")
        task = (by_id.get(rec.get("distill_id"))
                or by_text.get((q.get("problem"), tuple(q.get("pre_generated_steps") or ()))))
        tid = rec.get("distill_id") or q.get("problem")
        if task is None or task.id in seen:
            raise ImportRowError(path, i, tid,
                                 "matches no exported draft" if task is None else "draft labelled twice")
        seen.add(task.id)
        if not isinstance(label, dict) or label.get("finish_reason") not in FINISH:
            raise ImportRowError(path, i, tid, f"label.finish_reason is not one of {FINISH}")
        seconds = check_seconds(label.get("total_time"), path, i, tid, "label.total_time") / 1000.0
        work.items += 1
        if label["finish_reason"] in ("bad_problem", "give_up"):
            work.discarded_s += seconds
            continue
        mark = _first_wrong(label, path, i, tid)
        action = Action("mark", seconds, mark=mark)
        work.rows.append(first_error_row(task.drafts[0], task.meta, action, _Labeler(rec.get("labeler"))))
    return work
