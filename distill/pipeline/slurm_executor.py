"""The Slurm executor: the DAG's unfinished steps become job arrays chained with ``afterok``.

Steps are grouped by (depth in the unfinished DAG, kind): all generation shards of a run form one
array, all students another, all evaluations a third, each depending on the arrays that hold its
inputs. A merge step is five arrays, one per dedup stage (signatures and filter: one task per shard),
each after the one before; the last (publish) is the step's job for what depends on it. Every array task runs
``python -m distill.pipeline.task RUN_DIR GROUP`` — the same
``execute_step`` the local executor uses — so results do not depend on the launcher. Resources come
from the recipe's ``launcher.slurm`` section; the scripts never read the recipe: what a step needs
besides its config (W&B settings, processes per node) is on its command line (``context.Launch``).
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from distill import slurm
from distill.artifacts import atomic_write_json, atomic_write_text
from distill.pipeline.context import config_of, launch_of
from distill.pipeline.kinds import slurm_section
from distill.pipeline.plan import Step
from distill.pipeline.state import StepState, step_state
from distill.recipe import Recipe

TEMPLATE = Path(__file__).resolve().parents[2] / "slurm" / "templates" / "step.sbatch"  # every kind's
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING"}


def group_kind(step: Step) -> str:
    """A step's kind, except that the teacher's evaluation is a "ceiling" with its own resources
    (a teacher may need as many GPUs as its generation; the students' evaluations need one)."""
    return "ceiling" if _section(step) == "ceiling" else step.kind


def _section(step: Step) -> str:
    """From the step's typed config, not its labels (which are for people)."""
    return slurm_section(step.kind, step.kind == "eval" and config_of(step).ceiling)


def group_steps(steps: list[Step], todo: set[str]) -> list[tuple[str, list[Step]]]:
    """[(group name, steps)] in submission order: by depth among unfinished steps, then by kind."""
    depth: dict[str, int] = {}
    for s in steps:  # steps come topologically sorted
        if s.id in todo:
            depth[s.id] = 1 + max((depth[d] for d in s.deps if d in depth), default=-1)
    groups: dict[tuple[int, str], list[Step]] = {}
    for s in steps:
        if s.id in todo:
            groups.setdefault((depth[s.id], group_kind(s)), []).append(s)
    return [(f"{d:02d}-{kind}", members) for (d, kind), members in sorted(groups.items())]


def _resources(recipe: Recipe, step: Step) -> dict:
    section = _section(step)
    # an unset ceiling: generate's
    res = getattr(recipe.launcher.slurm, section) or recipe.launcher.slurm.generate
    return {"partition": res.partition, "account": res.account, "qos": res.qos, "nodes": res.nodes,
            "cpus_per_task": res.cpus_per_task, "mem": res.mem, "time": res.time,
            "gpus": res.gpus_per_node or None, "extra": list(res.extra)}


def merge_stages(step: Step, by_id: dict[str, Step]) -> list[tuple[str, int]]:
    """[(stage, tasks)] of a merge step, from its typed filters and its number of generation shards
    (its ``generate`` dependencies); a stage with no task (no dedup asked) is left out."""
    from distill.generation.pipeline import merge_task_counts

    shards = sum(by_id[d].kind == "generate" for d in step.deps)
    # the human pool and earlier generations' data, when deduplicated against
    references = sum(by_id[d].kind in ("human", "merge") for d in step.deps)
    return [(stage, n) for stage, n in merge_task_counts(config_of(step).filters, shards, references).items()
            if n]


def _submit_array(recipe: Recipe, run_dir: Path, scripts: Path, name: str, members: list[Step],
                  deps: list[str],
                  *, dry_run: bool, stage: str | None = None, tasks: int | None = None) -> str:
    """Write one array's script (and its step list) and submit it after ``deps``; its job id."""
    atomic_write_json(scripts / f"{name}.json", [s.id for s in members])
    tasks = len(members) if tasks is None else tasks
    command = [sys.executable, "-m", "distill.pipeline.task", str(run_dir), name,
               launch_of(recipe, _section(members[0])).model_dump_json(exclude_unset=True),
               *([stage] if stage else [])]
    parallel = recipe.launcher.slurm.array_parallelism
    text = slurm.render_sbatch(
        TEMPLATE.read_text(), job_name=f"distill-{recipe.name}-{name}",
        resources=_resources(recipe, members[0]),
        command=shlex.join(command), log_path=run_dir / "slurm" / "logs" / f"{name}_%A_%a.out",
        array=f"0-{tasks - 1}" + (f"%{parallel}" if parallel else ""),
    )
    script = atomic_write_text(scripts / f"{name}.sbatch", text)
    if dry_run:
        dep = f" --dependency={slurm.dependency_spec(deps)}" if deps else ""
        print(f"sbatch --parsable --kill-on-invalid-dep=yes{dep} {script}")
        return f"<{name}>"
    job_id = slurm.submit(script, dependency=deps or None)
    print(f"submitted {name}: job {job_id} ({tasks} tasks)")
    return job_id


def _active_steps(run_dir: Path) -> set[str]:
    """Steps already queued or running from an earlier submission: never submitted twice."""
    path = run_dir / "slurm" / "jobs.json"
    if not path.exists():
        return set()
    jobs = json.loads(path.read_text())
    try:
        states = slurm.job_states([j["job_id"] for j in jobs.values()])
    except slurm.SlurmError:
        return set()
    active = set()
    for job in jobs.values():
        for i, sid in enumerate(job["steps"]):
            state = states.get(f"{job['job_id']}_{i}", states.get(job["job_id"], ""))
            if state and state.split()[0] in ACTIVE:
                active.add(sid)
    return active


def submit_run(recipe: Recipe, run_dir: Path, steps: list[Step], cache: Path, *, dry_run: bool = False,
               wait: bool = False, scripts_dir: Path | None = None) -> int:
    """Submit the unfinished steps; a dry run writes its scripts to ``scripts_dir`` (never into the
    run folder) and submits nothing."""
    run_dir = run_dir.resolve()
    active = _active_steps(run_dir)
    todo = {s.id for s in steps if step_state(s, run_dir, cache) is not StepState.DONE and s.id not in active}
    if not todo:
        print("nothing to submit: every step is done or already queued")
        return 0
    job_of: dict[str, str] = {}
    jobs: dict[str, dict] = {}
    scripts = scripts_dir if dry_run and scripts_dir is not None else run_dir / "slurm" / "scripts"
    if not dry_run:
        # sbatch fails a job whose log dir is missing
        (run_dir / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
    by_id = {s.id: s for s in steps}
    for name, members in group_steps(steps, todo):
        if group_kind(members[0]) != "merge":
            deps = sorted({job_of[d] for s in members for d in s.deps if d in job_of})
            job_id = _submit_array(recipe, run_dir, scripts, name, members, deps, dry_run=dry_run)
            jobs[name] = {"job_id": job_id, "steps": [s.id for s in members]}
            job_of.update({s.id: job_id for s in members})
            continue
        for k, step in enumerate(members):  # a merge: one array per dedup stage, each after the one before
            deps = sorted({job_of[d] for d in step.deps if d in job_of})
            for stage, count in merge_stages(step, by_id):
                array = f"{name}-{k}-{stage}"
                deps = [_submit_array(recipe, run_dir, scripts, array, [step], deps, dry_run=dry_run,
                                      stage=stage, tasks=count)]
                jobs[array] = {"job_id": deps[0], "steps": [step.id]}
            job_of[step.id] = deps[0]  # the publish array, which writes the step's done marker
    if dry_run:
        print(f"scripts written to {scripts}; nothing submitted (--dry-run)")
        return 0
    atomic_write_json(run_dir / "slurm" / "jobs.json", jobs)
    print(f"follow with: distill status {run_dir}")
    if not wait:
        return 0
    final = slurm.wait([j["job_id"] for j in jobs.values()])
    failed = {k: v for k, v in final.items() if not v.startswith("COMPLETED")}
    for job, state in sorted(failed.items()):
        print(f"job {job}: {state}", file=sys.stderr)
    return 1 if failed else 0
