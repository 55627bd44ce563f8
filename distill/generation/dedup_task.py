"""One task of the streaming merge, as a Slurm array task or a local process runs it.

Run: python -m distill.generation.dedup_task WORK STAGE [TASK]
STAGE is one of ``signatures`` (one task per part: references, then shards), ``candidates`` (exact-hash
partitions, then band ranges), ``cluster`` (one), ``filter`` (one per shard) or ``publish`` (one; writes
the sources beside WORK). TASK defaults to ``$SLURM_ARRAY_TASK_ID``. A task already done returns at once.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from distill.generation import dedup

STAGES = ("signatures", "candidates", "cluster", "filter", "publish")


def task_count(settings: dict, stage: str) -> int:
    """How many array tasks ``stage`` has under these settings."""
    return {"signatures": len(dedup._parts(settings)), "candidates": dedup.candidate_tasks(settings),
            "cluster": 1, "filter": len(settings["shards"]), "publish": 1}[stage]


def run_task(work: Path, stage: str, task: int, verify=None) -> None:
    settings = dedup.read_settings(work)
    if not 0 <= task < task_count(settings, stage):
        raise ValueError(f"{stage} has tasks 0..{task_count(settings, stage) - 1}, not {task}")
    if stage == "signatures":
        dedup.signature_stage(work, dedup._parts(settings)[task])
    elif stage == "candidates":
        dedup.candidate_stage(work, task)
    elif stage == "cluster":
        dedup.cluster_stage(work)
    elif stage == "filter":
        from distill.generation.merge import filter_stage

        if settings["verify"] and verify is None:
            raise ValueError("this merge verifies rows: its filter tasks run inside the DAG's steps, "
                             "which know the task's verifier")
        filter_stage(work, task, verify if settings["verify"] else None)
    else:
        from distill.generation.merge import finish_merge

        finish_merge(work, work.parent)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] not in STAGES:
        print(f"usage: python -m distill.generation.dedup_task WORK {{{'|'.join(STAGES)}}} [TASK]",
              file=sys.stderr)
        return 2
    task = int(argv[2]) if len(argv) == 3 else int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    try:
        run_task(Path(argv[0]), argv[1], task)
    except (ValueError, FileNotFoundError) as exc:
        print(f"distill: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
