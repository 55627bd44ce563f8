"""Shared pieces of the annotation round trips: what a task is, and one-line errors on bad rows.

An annotation task is one unit of human work on teacher drafts: ``edited`` and ``first_error`` show
one draft, ``picked`` shows two drafts of one prompt. Exports write the tasks in a tool's own
format; imports read the finished work back into source rows (``distill.human.primitives``) and
reject a malformed row with ``ImportRowError``: one line naming the file, the row and what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distill.human.expert import steps


class ImportRowError(ValueError):
    """A finished-work file has a row that cannot be read: ``<file>: row <i> (<id>): <problem>``."""

    def __init__(self, path: str | Path, row: int, task_id: object, problem: str):
        super().__init__(f"{path}: row {row} (id {task_id!r}): {problem}")


class AnnotationsPending(RuntimeError):
    """The step waits for people: the finished-work file is not there yet (rerun once it is)."""


@dataclass(frozen=True)
class AnnotationTask:
    """What an expert is shown for one unit of work (Label Studio's word: a task): a draft, or two to
    pick between. Not ``distill.world.Task``, which is a world's prompts, splits and verifier."""

    id: str  # the draft's id (picked: the first draft's id)
    primitive: str
    prompt: str
    drafts: tuple[dict, ...]  # one or two source rows of teacher drafts
    meta: dict  # the first draft's meta (answer, prompt_id)

    @property
    def numbered_steps(self) -> str:
        """The draft's steps, one per line with their 1-based number: what a marker points at."""
        return "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps(self.drafts[0]["completion"])))


def tasks_for(primitive: str, groups: dict[str, list[dict]], meta_of, limit: int) -> list[AnnotationTask]:
    from distill.human.primitives import primitive_of  # its modules import this one

    shows, out = primitive_of(primitive).shows, []
    for drafts in list(groups.values())[:limit]:
        pair = drafts[:2] if len(drafts) > 1 else drafts * 2  # exact dedup may have left one of two twins
        shown = tuple(pair[:shows])
        out.append(AnnotationTask(drafts[0]["id"], primitive, drafts[0]["prompt"], shown, meta_of(drafts[0])))
    return out


def read_json_list(path: Path, what: str) -> list:
    """A tool's JSON export, which must be a list; one-line errors name the file (``what``: the list's
    kind)."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: {what}, got {type(data).__name__}")
    return data


def check_seconds(value: object, path, row: int, task_id: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ImportRowError(path, row, task_id, f"{what}={value!r} is not a non-negative number of seconds")
    return float(value)
