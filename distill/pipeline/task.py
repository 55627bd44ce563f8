"""One Slurm array task: ``python -m distill.pipeline.task RUN_DIR GROUP [LAUNCH [STAGE]]`` runs the
group's step at ``$SLURM_ARRAY_TASK_ID``, given ``LAUNCH`` (the JSON of ``context.Launch`` the executor
wrote into the script). A step that is already done (an earlier try finished it) is skipped.

With ``STAGE`` (a merge's dedup stage other than publish), the group is one merge step and the array
task is that stage's task number; the merge's publish array runs the step itself (``execute_step``),
whose runner finds every earlier stage's task done and writes the step's done marker."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from distill.artifacts import atomic_write_text, is_done
from distill.pipeline.context import Launch, StepContext
from distill.pipeline.execute import execute_step
from distill.pipeline.state import ERROR_FILE, describe_error, find_step
from distill.runtime import thread_count


def main(argv: list[str]) -> int:
    run_dir, group = Path(argv[0]), argv[1]
    launch = Launch.model_validate_json(argv[2]) if len(argv) > 2 else Launch()
    stage = argv[3] if len(argv) > 3 else None
    step_ids = json.loads((run_dir / "slurm" / "scripts" / f"{group}.json").read_text())
    array_task = int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    step_id = step_ids[0 if stage else array_task]
    step, cache = find_step(run_dir, step_id)
    if is_done(step.folder(run_dir, cache)):
        print(f"distill: {step_id} already done")
        return 0
    if stage and stage != "publish":
        from distill.pipeline.stages import run_merge_stage

        ctx = StepContext(run_dir, step, cache, thread_count(), launch)  # no torch: numpy work
        try:
            run_merge_stage(ctx, stage, array_task)
        except BaseException as exc:  # the publish array never starts: the step's status says why
            ctx.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(ctx.folder / ERROR_FILE, f"{stage} task {array_task}: {describe_error(exc)}\n")
            raise
        print(f"distill: {step_id} {stage} task {array_task} done")
        return 0
    folder = execute_step(run_dir, step_id, launch=launch)
    print(f"distill: {step_id} done -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
