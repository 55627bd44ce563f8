"""Run one step of a DAG: the single entry point that local workers and Slurm tasks share.

A step writes into its own folder; it is published by the ``DONE`` marker written last, so an
interrupted step is simply rerun (steps that checkpoint, like training and generation, resume).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from distill.artifacts import atomic_write_text, mark_done, read_meta, write_meta
from distill.pipeline.context import Launch, StepContext
from distill.pipeline.identity import check_inputs_unchanged
from distill.pipeline.kinds import kind_of
from distill.pipeline.state import ERROR_FILE, describe_error, find_step
from distill.runtime import thread_count, use_threads, used_devices


@contextlib.contextmanager
def _logged(folder: Path):
    """Send the step's stdout, stderr and logging into its log file (appending across retries).

    The file descriptors are redirected too, so what subprocesses print lands in the log, not on the
    terminal (lm-eval runs ``git describe``, whose "fatal: not a git repository" outside a checkout
    would otherwise interleave with the progress bar)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "log.txt", "a", buffering=1) as log:
        old = sys.stdout, sys.stderr
        for stream in old:
            stream.flush()
        saved = [os.dup(1), os.dup(2)]
        handler = logging.StreamHandler(log)
        logging.getLogger().addHandler(handler)
        sys.stdout = sys.stderr = log
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sys.stdout, sys.stderr = old
            logging.getLogger().removeHandler(handler)


def _start_tracker(ctx: StepContext):
    """The step's W&B run, configured with the step's own resolved config (its typed slice, what its
    id hashes) and the tracking settings the launcher passed; the same under every executor."""
    from distill.tracking import NullTracker, start_tracker

    if not kind_of(ctx.step.kind).tracked or ctx.launch.wandb is None:
        return NullTracker()
    return start_tracker(ctx.launch.wandb, sweep=ctx.launch.sweep, stage=ctx.step.kind, step_id=ctx.step.id,
                         config={**ctx.config.model_dump(mode="json"), "step": ctx.step.labels},
                         lineage={"step": ctx.step.id, **{f"dep{i}": d for i, d in enumerate(ctx.step.deps)}},
                         dir=ctx.run_dir)


def execute_step(run_dir: Path, step_id: str, threads: int | None = None,
                 launch: Launch | None = None) -> Path:
    """Run one step; ``launch``: what the launcher passed (tracking, processes), None: untracked, the
    processes its devices allow."""
    step, cache = find_step(run_dir, step_id)
    # the trainer (and what it launches) reads OMP_NUM_THREADS
    threads = use_threads(thread_count(requested=threads))
    ctx = StepContext(run_dir, step, cache, threads, launch)
    (ctx.folder / ERROR_FILE).unlink(missing_ok=True)
    start = time.time()
    with _logged(ctx.folder) as log:
        print(f"== {step.kind} {step.id} {step.labels} threads={threads} pid={os.getpid()}", file=log)
        try:
            check_inputs_unchanged(step)  # the files its id hashed are the files it reads ...
            ctx.tracker = _start_tracker(ctx)
            extra = kind_of(step.kind).run_function()(ctx) or {}
            check_inputs_unchanged(step)  # ... and were not edited while it read them
            ctx.tracker.finish()
        except BaseException as exc:
            traceback.print_exc(file=log)
            atomic_write_text(ctx.folder / ERROR_FILE, describe_error(exc) + "\n")
            ctx.tracker.finish(exit_code=1)
            raise
        wall = time.time() - start
        # a library that describes its own output in the step folder (the trainer: plan, data
        # fingerprint, seed) is kept inside the step's meta.json instead of being overwritten
        inner = read_meta(ctx.folder) if (ctx.folder / "meta.json").exists() else {}
        inner = {"inner": inner} if inner and "step" not in inner else {}  # not a half-finished try's own
        write_meta(ctx.folder, step=step.to_dict(), wall_s=wall, threads=threads,
                   devices=used_devices(ctx.devices), result=extra, **inner)
        mark_done(ctx.folder)
        print(f"== done in {wall:.1f}s", file=log)
    return ctx.folder
