"""Where a run lives on disk and what state each of its steps is in."""
from __future__ import annotations

import enum
import json
import os
from pathlib import Path

from distill.artifacts import atomic_write_json, is_done
from distill.pipeline.plan import Step

DAG_FILE = "dag.json"
RECIPE_FILE = "recipe.yaml"  # the resolved recipe the folder's steps were planned from
ERROR_FILE = "error.txt"


class StepState(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    PARTIAL = "partial"  # started, not finished: resumes from its own checkpoints
    TODO = "todo"
    WAITING = "waiting"  # an expert step waits for people's finished work (see distill.human.stage)


def cache_dir() -> Path:
    """Built teachers and tokenizers are shared by every run on this machine (``DISTILL_CACHE``)."""
    return Path(os.environ.get("DISTILL_CACHE", Path.home() / ".cache" / "distill"))


def step_state(step: Step, run_dir: Path, cache: Path) -> StepState:
    folder = step.folder(run_dir, cache)
    if is_done(folder):
        return StepState.DONE
    error = folder / ERROR_FILE
    # waiting.json is written by the expert stage until the import file is there; a rejected import
    # leaves it behind, so the step's last error says whether it still waits or failed
    if (folder / "waiting.json").exists() and (not error.exists() or _pending(error)):
        return StepState.WAITING
    if error.exists():
        return StepState.FAILED
    return StepState.PARTIAL if folder.exists() else StepState.TODO


def _pending(error: Path) -> bool:
    return error.read_text(errors="replace").startswith("AnnotationsPending")


def write_dag(run_dir: Path, steps: list[Step], cache: Path) -> Path:
    return atomic_write_json(run_dir / DAG_FILE, {"cache_dir": str(cache),
                                                  "steps": [s.to_dict() for s in steps]})


def read_dag(run_dir: Path) -> tuple[list[Step], Path]:
    path = run_dir / DAG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no {DAG_FILE}); run `distill run "
                                "RECIPE` first")
    try:
        data = json.loads(path.read_bytes())
        steps = [Step(d["kind"], d["config"], tuple(d["deps"]), d["labels"], d.get("inputs", {}))
                 for d in data["steps"]]
        cache = Path(data["cache_dir"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # cut short, or edited by hand
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise ValueError(f"{path}: not a readable distill DAG ({what}); rerun the recipe that made it "
                         f"({run_dir / RECIPE_FILE}) to write it again") from None
    for step, d in zip(steps, data["steps"]):
        if step.id != d.get("id"):
            raise ValueError(f"{path}: step {d.get('id')} does not match its config (file edited by hand?)")
    return steps, cache


def find_step(run_dir: Path, step_id: str) -> tuple[Step, Path]:
    steps, cache = read_dag(run_dir)
    for step in steps:
        if step.id == step_id:
            return step, cache
    raise ValueError(f"{run_dir / DAG_FILE}: no step {step_id!r}")


def failure_summary(folder: Path) -> str:
    """A failed step's cause in one line: the first line of its ``error.txt``."""
    lines = [ln for ln in (folder / ERROR_FILE).read_text().splitlines() if ln.strip()]
    return lines[0].strip() if lines else "failed (no message)"


def describe_error(exc: BaseException) -> str:
    """One line for an exception and the causes it wraps (``raise ... from``, or raised while handling
    another): a library's generic wrapper ("An error occurred while generating the dataset") then
    still shows what went wrong underneath, e.g. the file and row."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen and len(parts) < 4:
        seen.add(id(exc))
        text = str(exc).strip().splitlines()
        parts.append(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return " <- ".join(parts)
