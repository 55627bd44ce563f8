"""The streaming merge's stages as Slurm job arrays, chained with ``afterok``.

One array per stage (``dedup_task.STAGES``), each task ``python -m distill.generation.dedup_task WORK
STAGE`` at ``$SLURM_ARRAY_TASK_ID``, rendered from the same ``slurm/templates/step.sbatch`` every DAG
step uses; the tasks write the same files the local executor's loop writes, so the published sources
are the same bytes. A task already done (a requeue, a rerun) returns at once. The work folder must
have been prepared (``pipeline.prepare_merge``) and its merge must not verify rows (the verifier is
the world's Python callable: those merges run as DAG steps, whose stage arrays the Slurm executor
submits itself, each task rebuilding the verifier from the world: ``pipeline.stages.run_merge_stage``).
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from distill import slurm
from distill.generation import dedup
from distill.generation.dedup_task import STAGES, task_count

TEMPLATE = Path(__file__).resolve().parents[2] / "slurm" / "templates" / "step.sbatch"


def submit_stages(work: Path, resources: Mapping[str, object], env: Mapping[str, str] | None = None,
                  extra: tuple[str, ...] = ()) -> list[str]:
    """Submit one array per stage, each after the previous one; return the job ids in order."""
    work = Path(work).resolve()
    settings = dedup.read_settings(work)
    if settings["verify"]:
        raise ValueError(f"{work}: this merge verifies rows; run it as the DAG's merge step instead")
    scripts = work / "slurm"
    scripts.mkdir(exist_ok=True)
    jobs: list[str] = []
    for stage in STAGES:
        count = task_count(settings, stage)
        command = shlex.join([sys.executable, "-m", "distill.generation.dedup_task", str(work), stage])
        text = slurm.render_sbatch(TEMPLATE.read_text(), job_name=f"dedup-{stage}", resources=resources,
                                   command=command, log_path=scripts / f"{stage}-%A_%a.out",
                                   array=f"0-{count - 1}", env=env)
        script = scripts / f"{stage}.sbatch"
        script.write_text(text)
        jobs.append(slurm.submit(script, dependency=jobs[-1:], extra=extra))
    return jobs
