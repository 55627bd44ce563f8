"""What a runner may know besides its own config (``StepContext``), and how it reads a model
reference. Its own module so the runner modules and the executor import it without importing each
other."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from distill.pipeline.configs import ModelRef
from distill.pipeline.plan import Step
from distill.recipe.schema import ModelSpec, Recipe, Wandb


class Launch(BaseModel):
    """What the launcher hands a step besides its config: where it runs and where it reports, never
    what it computes (so not in the step's id). The executor builds it from the recipe it was given
    (``launch_of``) and passes it along (a worker's argument, the Slurm task's command line): a step
    never reads the run folder's recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sweep: str = ""  # the W&B group
    wandb: Wandb | None = None  # None: the step is not tracked
    processes: int | None = None  # training processes per node; None: one per device (distill.allocation)


def launch_of(recipe: Recipe, section: str | None = None) -> Launch:
    """A step's launch settings: ``launcher.processes`` on this machine, or the processes per node of
    the Slurm ``section`` its job array was given."""
    processes = (recipe.launcher.processes if section is None
                 else (getattr(recipe.launcher.slurm, section)
                       or recipe.launcher.slurm.generate).processes_per_node)
    return Launch(sweep=recipe.name, wandb=recipe.tracking.wandb, processes=processes)


class StepContext:
    """What a runner may know besides its own config: where its inputs and outputs live, and what the
    launcher passed (``launch``)."""

    def __init__(self, run_dir: Path, step: Step, cache: Path, threads: int, launch: Launch | None = None):
        from distill.tracking import NullTracker

        self.run_dir, self.step, self.cache, self.threads = run_dir, step, cache, threads
        self.launch = launch or Launch()
        self.config = config_of(step)  # the step's typed slice, validated once as the step starts
        self.devices: int | None = None  # devices the runner spread over, when not only this process's
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

    def allocation(self):
        """The training processes this step was given: Slurm's nodes and GPUs (or this machine's GPUs),
        unless the launcher passed processes per node (``distill.allocation``)."""
        from distill.allocation import from_environment

        return from_environment(requested=self.launch.processes)

    def train(self, job):
        """Train ``job`` with this step's allocation. This process alone prepared the inputs and will
        write meta.json, the W&B run and the done-marker; the launched processes only train."""
        from distill.training import train
        from distill.training.launch import run

        allocation = self.allocation()
        if job.config_path:  # the launched processes' devices are the step's (cost ledger)
            self.devices = allocation.processes
            return run(job, self.tracker.log, allocation)
        if allocation.processes > 1:
            raise ValueError(f"{allocation.processes} training processes need train.accelerate_config "
                             f"(a distributed config); `distill validate` names the setting")
        return train(job, tracker=self.tracker.log)

    def ceiling_engine(self, vllm) -> dict:
        """How the teacher's evaluation spreads over the step's devices: vLLM tensor parallel when the
        teacher generates with vLLM (``vllm``, from the step's config), else lm-eval's HF model sharded
        over the visible GPUs."""
        from distill.runtime import visible_gpus

        if vllm is not None:
            engine = {"backend": "vllm", "parallel": vllm.parallel, "vllm_memory": vllm.memory}
        else:
            engine = {"backend": "hf", "parallel": max(1, visible_gpus())}
        self.devices = engine["parallel"]  # the devices this evaluation spans (cost ledger)
        return engine


def config_of(step: Step):
    """A step's config as its kind's typed slice (``pipeline/configs.py``)."""
    from distill.pipeline.kinds import kind_of

    return kind_of(step.kind).config.model_validate(step.config)


def model_ref(ctx: StepContext, ref: ModelRef) -> ModelSpec:
    """A model given in the recipe, or the model a finished step wrote (``model/`` or a pointer)."""
    if ref.model is not None:
        return ref.model
    folder = ctx.step_folder(ref.step)
    pointer = folder / "pointer.json"
    if pointer.exists():
        return ModelSpec.model_validate(json.loads(pointer.read_text()))
    return ModelSpec(model=str(folder / "model"))


def as_dict(result) -> dict:
    from dataclasses import asdict, is_dataclass

    return asdict(result) if is_dataclass(result) else dict(result)
