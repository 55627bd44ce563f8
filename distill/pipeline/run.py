"""``distill run|generate|train|eval``, ``distill status`` and ``distill report``: plan, skip, execute."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from distill.artifacts import atomic_write_text
from distill.pipeline.context import Launch, launch_of
from distill.pipeline.identity import recipe_inputs, with_inputs
from distill.pipeline.lock import run_lock
from distill.pipeline.ownership import check_same_experiment
from distill.pipeline.plan import Step, plan, select
from distill.pipeline.state import (
    RECIPE_FILE,
    StepState,
    cache_dir,
    failure_summary,
    read_dag,
    step_state,
    write_dag,
)
from distill.recipe import Recipe, resolved_yaml


def run_dir_of(recipe: Recipe) -> Path:
    return Path(recipe.output_dir).expanduser() / recipe.name


def planned(recipe: Recipe) -> list[Step]:
    """The recipe's steps, each carrying the content fingerprints of the local files it reads."""
    return with_inputs(plan(recipe), recipe_inputs(recipe))


def prepare_run(recipe: Recipe, until: str | None = None) -> tuple[Path, list[Step], Path]:
    """Write the resolved recipe and the DAG into the run folder; return (run_dir, steps, cache).
    A folder holding another experiment's finished steps is refused first (pipeline/ownership.py)."""
    run_dir = run_dir_of(recipe)
    steps = planned(recipe)
    check_same_experiment(run_dir, recipe, steps)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RECIPE_FILE, resolved_yaml(recipe))
    cache = cache_dir()
    write_dag(run_dir, steps, cache)
    return run_dir, select(steps, until), cache


def run_recipe(recipe: Recipe, launcher: str = "local", dry_run: bool = False, until: str | None = None,
               wait: bool = False, scripts_dir: Path | None = None) -> int:
    if dry_run:
        return dry_run_recipe(recipe, launcher, until, scripts_dir)
    with run_lock(run_dir_of(recipe)):  # a second `distill run` on this folder stops here
        run_dir, steps, cache = prepare_run(recipe, until)
        states = {s.id: step_state(s, run_dir, cache) for s in steps}
        todo = [s for s in steps if states[s.id] is not StepState.DONE]
        print(f"{recipe.name}: {len(steps)} steps, {len(steps) - len(todo)} already done, {len(todo)} to run "
              f"({launcher}) -> {run_dir}")
        if launcher == "slurm":
            from distill.pipeline.slurm_executor import submit_run

            return submit_run(recipe, run_dir, steps, cache, wait=wait)
        return _run_here(recipe, run_dir, steps, cache)


def dry_run_recipe(recipe: Recipe, launcher: str, until: str | None, scripts_dir: Path | None = None) -> int:
    """Show the plan (and, for Slurm, the scripts) without writing into the run folder: the scripts
    go to ``scripts_dir`` or a temporary folder, so an existing run's recipe.yaml and dag.json stay
    as they are."""
    run_dir, cache = run_dir_of(recipe), cache_dir()
    steps = planned(recipe)
    check_same_experiment(run_dir, recipe, steps)  # a dry run says what the run would refuse
    steps = select(steps, until)
    states = {s.id: step_state(s, run_dir, cache) for s in steps}
    done = sum(st is StepState.DONE for st in states.values())
    print(f"{recipe.name}: {len(steps)} steps, {done} already done, {len(steps) - done} to run "
          f"({launcher}, dry run: nothing is written to {run_dir})")
    if launcher == "slurm":
        from distill.pipeline.slurm_executor import submit_run

        scripts = scripts_dir or Path(tempfile.mkdtemp(prefix=f"distill-dry-run-{recipe.name}-"))
        return submit_run(recipe, run_dir, steps, cache, dry_run=True, scripts_dir=scripts)
    _print_steps(steps, states, run_dir, cache)
    return 0


def _run_here(recipe: Recipe, run_dir: Path, steps: list[Step], cache: Path) -> int:
    from distill.pipeline.local import run_local

    start = time.time()
    outcome = run_local(run_dir, steps, cache, recipe.launcher.workers, launch=launch_of(recipe))
    failed = sorted(k for k, v in outcome.items() if v != "done")
    print(f"ran {sum(v == 'done' for v in outcome.values())} steps in {time.time() - start:.0f}s"
          + (f"; {len(failed)} failed or skipped (see `distill status {run_dir}`)" if failed else ""))
    by_id = {s.id: s for s in steps}
    for sid in (k for k in failed if outcome[k] == "failed"):
        step = by_id[sid]
        print(f"failed: {step.kind} {step.label}: {failure_summary(step.folder(run_dir, cache))}",
              file=sys.stderr)
    for report in (s for s in steps if s.stage == "report"):  # several: per teacher, then their comparison
        if step_state(report, run_dir, cache) is StepState.DONE:
            print(f"report: {report.folder(run_dir, cache) / 'report.md'}"
                  + (f" ({report.label})" if report.label else ""))
    return 1 if failed else 0


def _print_steps(steps: list[Step], states: dict, run_dir: Path, cache: Path) -> None:
    for s in steps:
        print(f"  {states[s.id].value:8s} {s.id:22s} {s.label:40s} {s.folder(run_dir, cache)}")


def show_status(run_dir: Path) -> int:
    steps, cache = read_dag(run_dir)
    states = {s.id: step_state(s, run_dir, cache) for s in steps}
    _print_steps(steps, states, run_dir, cache)
    counts = {st.value: sum(v is st for v in states.values()) for st in StepState}
    print(" ".join(f"{k}={v}" for k, v in counts.items() if v))
    for s in steps:
        if states[s.id] is StepState.FAILED:
            print(f"failed: {s.id} {s.label}: {failure_summary(s.folder(run_dir, cache))} "
                  f"(log: {s.folder(run_dir, cache) / 'log.txt'})", file=sys.stderr)
    return 0 if counts["failed"] == 0 else 1


def rerun_report(run_dir: Path) -> int:
    from distill.artifacts import DONE
    from distill.pipeline.execute import execute_step

    steps, cache = read_dag(run_dir)
    launch = _folder_launch(run_dir)
    by_id = {s.id: s for s in steps}
    reports = [s for s in steps if s.stage == "report"]  # in DAG order: a comparison after its parts
    for report in reports:
        missing = [d for d in report.deps if by_id[d].stage != "report"
                   and step_state(by_id[d], run_dir, cache) is not StepState.DONE]
        if missing:
            print(f"error: {len(missing)} evaluations are not finished (see `distill status {run_dir}`)",
                  file=sys.stderr)
            return 1
    for report in reports:
        (report.folder(run_dir, cache) / DONE).unlink(missing_ok=True)
        folder = execute_step(run_dir, report.id, launch=launch)
        print(f"report: {folder / 'report.md'}" + (f" ({report.label})" if report.label else ""))
    return 0


def _folder_launch(run_dir: Path) -> Launch:
    """What the run's launcher passed its steps, for a report rewritten later: the folder's recipe
    (this command is the launcher here, and launchers read recipes; steps never do)."""
    import yaml

    from distill.recipe.schema import Tracking

    tree = yaml.safe_load((run_dir / RECIPE_FILE).read_text()) or {}
    return Launch(sweep=str(tree.get("name", run_dir.name)),
                  wandb=Tracking.model_validate(tree.get("tracking") or {}).wandb)
