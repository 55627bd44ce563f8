"""One Slurm array task: ``python -m distill.pipeline.task RUN_DIR GROUP [LAUNCH]`` runs the group's
step at ``$SLURM_ARRAY_TASK_ID``, given ``LAUNCH`` (the JSON of ``context.Launch`` the executor wrote
into the script). A step that is already done (an earlier try finished it) is skipped."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from distill.artifacts import is_done
from distill.pipeline.context import Launch
from distill.pipeline.execute import execute_step
from distill.pipeline.state import find_step


def main(argv: list[str]) -> int:
    run_dir, group = Path(argv[0]), argv[1]
    launch = Launch.model_validate_json(argv[2]) if len(argv) > 2 else Launch()
    step_ids = json.loads((run_dir / "slurm" / "scripts" / f"{group}.json").read_text())
    step_id = step_ids[int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))]
    step, cache = find_step(run_dir, step_id)
    if is_done(step.folder(run_dir, cache)):
        print(f"distill: {step_id} already done")
        return 0
    folder = execute_step(run_dir, step_id, launch=launch)
    print(f"distill: {step_id} done -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
