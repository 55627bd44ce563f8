"""A run folder belongs to one experiment: a rerun may extend it, never replace it.

``runs/<name>/recipe.yaml`` and ``dag.json`` say which experiment the folder's steps measured, so
``distill status`` and ``distill report`` read them. A second recipe with the same ``name`` and
``output_dir`` would rewrite both and leave the folder describing an experiment it did not run.
The same experiment is either
- the same recipe up to the knobs that re-analyse or relocate a run without changing what its
  steps measured (``EXTENDS``: the report, the launcher, tracking, the description) -- e.g. the
  README's ``report.convergence.factor=2`` on the demo's folder, and back; or
- a plan that keeps every finished step of the folder (more seeds, sizes, arms, teachers or
  generations): it adds to the folder's results and drops none.
The same recipe run again after its local data files or distill changed re-measures in place.
Anything else is refused before a byte is written, naming the keys that differ.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from distill.pipeline.kinds import kind_of
from distill.pipeline.plan import Step
from distill.pipeline.state import DAG_FILE, RECIPE_FILE, StepState, read_dag, step_state
from distill.recipe import Recipe, RecipeError, resolved_yaml

EXTENDS = frozenset({"name", "output_dir", "description", "report", "launcher", "tracking"})
SHOWN = 3  # differing keys named in the refusal; the rest are counted


def check_same_experiment(run_dir: Path, recipe: Recipe, steps: list[Step]) -> None:
    """Raise ``RecipeError`` (one line) when ``run_dir`` holds finished steps of another experiment."""
    if not (run_dir / DAG_FILE).is_file():
        return  # a new folder, or one a dry run or a refused run left empty
    before = _folder_recipe(run_dir)
    differs = None if before is None else recipe_differences(before, _tree(recipe))
    if differs is not None and all(_section(k) in EXTENDS for k in differs):
        return
    old_steps, cache = read_dag(run_dir)
    planned_ids = {s.id for s in steps}
    # a report step of any kind (sweep, teachers, generations) is rewritten, never a loss
    dropped = [s for s in old_steps if kind_of(s.kind).stage != "report" and s.id not in planned_ids
               and s.folder(run_dir, cache).is_relative_to(run_dir)
               and step_state(s, run_dir, cache) is StepState.DONE]
    if not dropped:
        return
    what = _describe(differs or {}, before)
    free = next(n for i in range(2, 10_000) if not (run_dir.parent / (n := f"{recipe.name}-{i}")).exists())
    raise RecipeError(
        f"{run_dir} holds another experiment ({what}; this plan would drop {len(dropped)} of its finished "
        f"steps): a run folder holds one experiment, so give this one its own, e.g. name={free}, "
        f"or rerun with the folder's own recipe ({run_dir / RECIPE_FILE})")


def recipe_differences(before: dict, after: dict, prefix: str = "") -> dict[str, tuple]:
    """{dotted key: (value there, value here)} over two resolved recipes; lists of one length are
    compared item by item (``mixes.arms[1].fraction``), others whole. A key only one of them has
    came with another version of distill (both files are fully resolved), not from the recipe."""
    out: dict[str, tuple] = {}
    for key in (k for k in before if k in after):
        a, b = before[key], after[key]
        dotted = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(recipe_differences(a, b, dotted))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            out.update(recipe_differences(dict(enumerate(a)), dict(enumerate(b)), dotted))
        elif a != b:
            out[dotted] = (a, b)
    return out


def _section(key: str) -> str:
    return key.split(".")[0].split("[")[0]


def _describe(differs: dict[str, tuple], before: dict | None) -> str:
    if before is None:
        return f"its {RECIPE_FILE} is missing or unreadable"
    keys = [k for k in differs if _section(k) not in EXTENDS]  # never empty: that recipe is the same
    shown = "; ".join(f"{k}: {_short(differs[k][0])} there, {_short(differs[k][1])} here"
                      for k in keys[:SHOWN])
    return shown + (f"; {len(keys) - SHOWN} more keys differ" if len(keys) > SHOWN else "")


def _short(value) -> str:
    text = "unset" if value is None else yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").strip()
    if len(text) <= 40:
        return text
    return f"{len(value)} items" if isinstance(value, list) else text[:37] + "..."


def _folder_recipe(run_dir: Path) -> dict | None:
    try:
        tree = yaml.safe_load((run_dir / RECIPE_FILE).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return tree if isinstance(tree, dict) else None


def _tree(recipe: Recipe) -> dict:
    return yaml.safe_load(resolved_yaml(recipe))  # the form recipe.yaml was written in
