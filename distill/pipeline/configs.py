"""Each step kind's config slice as a typed model: what ``plan()`` writes and what a runner reads.

``plan()`` builds every slice through its model and stores the model's dump (only the fields it was
given: ``exclude_unset``), so a step's id is computed from exactly the dict it was before the slices
were typed. A runner gets the slice validated once, when its step starts (``StepContext.config``);
nothing reads a config dict by string key. The recipe sections inside a slice are the recipe's own
models (``recipe/schema.py``); the models here only say how a kind's slice puts them together.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from distill.recipe.schema import (
    ArithmeticWorld,
    Arm,
    DatasetWorld,
    Eval,
    Experts,
    Filters,
    Generation,
    Mixes,
    ModelSpec,
    ReasoningGymWorld,
    Report,
    SelfTraining,
    Student,
    TeacherBuild,
    Train,
    Verifier,
    Wall,
)

World = Annotated[ArithmeticWorld | DatasetWorld | ReasoningGymWorld, Field(discriminator="kind")]
# worlds distill generates
Generated = Annotated[ArithmeticWorld | ReasoningGymWorld, Field(discriminator="kind")]


class StepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelRef(StepConfig):
    """A model given in the recipe, or the model a finished step wrote (``{"step": id}``)."""

    model: ModelSpec | None = None
    step: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.model is None) == (self.step is None):
            raise ValueError("a model reference names a model or a step, not both or neither")
        return self


class TokenizerConfig(StepConfig):
    world: Generated


class TeacherConfig(StepConfig):
    world: World
    build: TeacherBuild


class StudentConfig(StepConfig):
    student: Student
    seed: int


class HumanConfig(StepConfig):
    world: World
    write_s: float | None = None  # with an experts section: each human row's writing seconds


class GenerateConfig(StepConfig):
    generation: Generation  # without filters and shards (the merge's, and the plan's)
    world: World
    teacher: ModelRef
    shard: int
    shards: int
    prompt_start: int = 0  # generations: each one answers its own block of the prompt stream


class MergeConfig(StepConfig):
    filters: Filters
    world: World


class ExpertWorld(StepConfig):
    kind: Literal["arithmetic", "dataset", "reasoning_gym"]  # the expert reads the drafts, not the world


class Allocation(StepConfig):
    """An arm's allocator: which drafts the expert works on, under a budget of expert hours."""

    policy: Literal["random", "verifier_failed", "disagreement", "roi"]
    hours: float


class ExpertConfig(StepConfig):
    primitive: str
    experts: Experts | None
    world: ExpertWorld
    allocation: Allocation | None = None  # None: the drafts of the first experts.drafts prompts


class Mix(StepConfig):
    """One training run of a mixes sweep: an arm at one N and seed."""

    arm: Arm  # without its ladder (sizes); without `human` when written from scratch
    n: int
    seed: int
    unit: Literal["examples", "tokens"]
    wall: Wall
    weights: dict[str, float]


class Lineage(StepConfig):
    """One student of iterated self-training (recipe section ``generations``)."""

    generation: int
    seed: int
    policy: str | None = None  # None: generation 0, shared by every policy
    subsample: int | None = None


class TrainConfig(StepConfig):
    """A student of a mixes sweep, trained on one mix."""

    train: Train
    mix: Mix
    teacher: ModelRef | None = None  # train.kd.source=online: the teacher whose logits the student matches


class LineageConfig(StepConfig):
    """A student of iterated self-training, trained on the rows its generation's policy picks."""

    train: Train
    lineage: Lineage


class VLLMCeiling(StepConfig):
    """The teacher's evaluation on vLLM (it generates with vLLM): tensor parallel, memory share."""

    parallel: int
    memory: float


class EvalConfig(StepConfig):
    eval: Eval
    world: World
    model: ModelRef
    vllm: VLLMCeiling | None = None  # the ceiling's engine when the teacher generates with vLLM (in its id)

    @property
    def ceiling(self) -> bool:
        """The teacher's evaluation: a model the recipe names, or a teacher distill built."""
        return self.model.model is not None or self.model.step.startswith("teacher-")


class VerifierConfig(StepConfig):
    """Step marks as a verifier: the scorers' settings, the world (test prompts) and the sampling length."""

    verifier: Verifier
    world: ArithmeticWorld
    max_new_tokens: int


class ReportConfig(StepConfig):
    """A mixes sweep's data-wall report."""

    report: Report
    mixes: Mixes
    human_pool: int | None = None


class TeachersReportConfig(StepConfig):
    """The comparison of several teachers' sweeps (one ``report`` step each, in recipe order)."""

    report: Report
    teachers: list[str]


class GenerationsReportConfig(StepConfig):
    """The report that follows iterated self-training over its generations."""

    report: Report
    generations: SelfTraining


def dumped(model: type[StepConfig], config: dict) -> dict:
    """``config`` validated by ``model`` and dumped as the step stores it (and hashes it for its id)."""
    return model.model_validate(config).model_dump(mode="json", exclude_unset=True)
