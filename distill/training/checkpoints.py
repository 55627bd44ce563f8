"""Restart safety: checkpoints written atomically, the newest loaded on a rerun, the last two kept.

``checkpoints/step-N`` holds ``accelerator.save_state`` (model, optimizer, RNG states; a DeepSpeed
engine's shards under ZeRO) plus ``trainer_state.json``. It is written under ``.tmp-step-N`` and
renamed once complete, so a kill at any moment leaves either a whole checkpoint or a stray temp
folder, which the next run deletes. Data order needs no saved state: rows are a pure function of
(data, seed, step).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from distill.artifacts import atomic_write_json, atomic_write_text
from distill.distributed import Runtime
from distill.training.job import TrainJob, claim_out_dir

KEEP = 2
_STEP_DIR = re.compile(r"^step-(\d+)$")


def complete(out: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out/checkpoints``, oldest first."""
    folder = out / "checkpoints"
    found = []
    for path in folder.glob("step-*") if folder.exists() else ():
        match = _STEP_DIR.match(path.name)
        if match and (path / "trainer_state.json").exists():
            found.append((int(match.group(1)), path))
    return sorted(found)


def resume(rt: Runtime, job: TrainJob, out: Path) -> tuple[int, list[dict]]:
    """Claim ``out`` for ``job``, load its newest checkpoint (if any) into the prepared model and
    optimizer, drop partial checkpoints and metric lines after it; return (step, metric records)."""
    if rt.is_main:
        out.mkdir(parents=True, exist_ok=True)
        for tmp in (out / "checkpoints").glob(".tmp-*") if (out / "checkpoints").exists() else ():
            shutil.rmtree(tmp, ignore_errors=True)
        claim_out_dir(job)
    rt.barrier()
    found = complete(out)
    start = found[-1][0] if found else 0
    if found:
        rt.load_state(found[-1][1])
    records = _read_metrics(out / "metrics.jsonl", start)
    if rt.is_main:
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    rt.barrier()
    return start, records


def _read_metrics(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["step"] <= upto]


def save(rt: Runtime, out: Path, step: int, steps: int) -> Path:
    """Every rank writes its part into a temp folder; rank 0 renames it into place and prunes."""
    folder = out / "checkpoints"
    tmp, final = folder / f".tmp-step-{step}", folder / f"step-{step}"
    if rt.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    rt.barrier()
    rt.save_state(tmp)
    rt.barrier()
    if rt.is_main:
        atomic_write_json(tmp / "trainer_state.json", {"step": step, "steps": steps})
        os.replace(tmp, final)
        for _, old in complete(out)[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    rt.barrier()
    return final
