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

from distill.artifacts import atomic_write_text, mark_done, write_meta
from distill.pipeline.plan import Step
from distill.pipeline.state import ERROR_FILE, describe_error, find_step


class StepContext:
    """What a stage may know besides its own config: where its inputs and outputs live."""

    def __init__(self, run_dir: Path, step: Step, cache: Path, threads: int):
        from distill.tracking import NullTracker

        self.run_dir, self.step, self.cache, self.threads = run_dir, step, cache, threads
        self.folder = step.folder(run_dir, cache)
        self.tracker = NullTracker()
        self._steps = None

    def dep(self, kind: str) -> Path:
        """The folder of this step's (single) upstream step of a kind."""
        folders = self.deps(kind)
        if len(folders) != 1:
            raise ValueError(f"step {self.step.id} has {len(folders)} upstream {kind!r} steps, expected 1")
        return folders[0]

    @property
    def steps(self) -> dict[str, Step]:
        """Every step of the run by id (the DAG is read once)."""
        from distill.pipeline.state import read_dag

        if self._steps is None:
            self._steps = {s.id: s for s in read_dag(self.run_dir)[0]}
        return self._steps

    def deps(self, kind: str) -> list[Path]:
        return [self.step_folder(d) for d in self.step.deps if self.steps[d].kind == kind]

    def dep_id(self, kind: str) -> str:
        return next(d for d in self.step.deps if self.steps[d].kind == kind)

    def step_folder(self, step_id: str) -> Path:
        return self.steps[step_id].folder(self.run_dir, self.cache)

    def _launcher(self) -> dict:
        import yaml

        return yaml.safe_load((self.run_dir / "recipe.yaml").read_text()).get("launcher") or {}

    def allocation(self):
        """The training processes this step was given: Slurm's nodes and GPUs (or this machine's GPUs),
        unless the recipe sets processes per node (``distill.allocation``)."""
        from distill.allocation import from_environment

        launcher = self._launcher()
        if os.environ.get("DISTILL_EXECUTOR") == "slurm":
            requested = ((launcher.get("slurm") or {}).get("train") or {}).get("processes_per_node")
        else:
            requested = launcher.get("processes")
        return from_environment(requested=requested)

    def train(self, job):
        """Train ``job`` with this step's allocation. This process alone prepared the inputs and will
        write meta.json, the W&B run and the done-marker; the launched processes only train."""
        from distill.training import train
        from distill.training.launch import run

        allocation = self.allocation()
        if job.config_path:
            return run(job, self.tracker.log, allocation)
        if allocation.processes > 1:
            raise ValueError(f"{allocation.processes} training processes need train.accelerate_config "
                             f"(a distributed config); `distill validate` names the setting")
        return train(job, tracker=self.tracker.log)

    def ceiling_engine(self) -> dict:
        """How the teacher's evaluation spreads over the step's devices: vLLM tensor parallel when the
        teacher generates with vLLM, else lm-eval's HF model sharded over the visible GPUs."""
        import yaml

        from distill.allocation import visible_gpus

        gen = yaml.safe_load((self.run_dir / "recipe.yaml").read_text()).get("generation") or {}
        if gen.get("backend") == "vllm":
            vllm = gen.get("vllm") or {}
            return {"backend": "vllm", "parallel": vllm.get("tensor_parallel_size", 1),
                    "vllm_memory": vllm.get("gpu_memory_utilization", 0.9)}
        return {"backend": "hf", "parallel": max(1, visible_gpus(os.environ))}


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


TRACKED = ("train", "eval", "report")  # the steps that get a W&B run (group = sweep, job_type = kind)


def _start_tracker(ctx: StepContext):
    """The step's W&B run, configured from the run's resolved recipe; the same under every executor."""
    import yaml

    from distill.recipe.schema import Tracking
    from distill.tracking import NullTracker, start_tracker

    if ctx.step.kind not in TRACKED:
        return NullTracker()
    recipe = yaml.safe_load((ctx.run_dir / "recipe.yaml").read_text())
    return start_tracker(Tracking.model_validate(recipe["tracking"]), sweep=recipe["name"], stage=ctx.step.kind,
                         step_id=ctx.step.id, config={**recipe, "step": ctx.step.labels},
                         lineage={"step": ctx.step.id, **{f"dep{i}": d for i, d in enumerate(ctx.step.deps)}},
                         dir=ctx.run_dir)


def execute_step(run_dir: Path, step_id: str, threads: int | None = None) -> Path:
    import torch

    from distill.pipeline.stages import STAGES

    step, cache = find_step(run_dir, step_id)
    threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the trainer (and anything it launches) reads this
    ctx = StepContext(run_dir, step, cache, threads)
    (ctx.folder / ERROR_FILE).unlink(missing_ok=True)
    start = time.time()
    with _logged(ctx.folder) as log:
        print(f"== {step.kind} {step.id} {step.labels} threads={threads} pid={os.getpid()}", file=log)
        try:
            ctx.tracker = _start_tracker(ctx)
            extra = STAGES[step.kind](ctx) or {}
            ctx.tracker.finish()
        except BaseException as exc:
            traceback.print_exc(file=log)
            atomic_write_text(ctx.folder / ERROR_FILE, describe_error(exc) + "\n")
            ctx.tracker.finish(exit_code=1)
            raise
        wall = time.time() - start
        write_meta(ctx.folder, step=step.to_dict(), wall_s=wall, threads=threads,
                   devices=_devices(), result=extra)
        mark_done(ctx.folder)
        print(f"== done in {wall:.1f}s", file=log)
    return ctx.folder


def _devices() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "count": torch.cuda.device_count(), "name": torch.cuda.get_device_name(0)}
    return {"type": "cpu", "count": 1}
