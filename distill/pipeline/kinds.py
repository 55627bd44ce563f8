"""Every kind of step, one record each: adding a kind is adding one record here (and its runner).

The words, used the same way everywhere in the code and the docs:

- **kind**: what one step does (``tokenizer``, ``train``, ...); a step's id starts with its kind's
  ``id_word`` (its name, except for kinds split out of an older one, which keep its word so their steps
  keep their ids: ``lineage`` ids start with ``train-``, the two comparison reports' with ``report-``).
  A record below says everything the rest of the code needs to know about a kind.
- **stage**: one of the five phases of an experiment, in order: ``prepare``, ``generate``, ``train``,
  ``eval``, ``report``. Each kind belongs to one stage. ``distill run`` runs every stage;
  ``distill generate|train|eval`` (the CLI's stage verbs, ``UNTIL``) run the stages up to and
  including the one named.
- **config**: a kind's slice of the recipe, a typed model (``pipeline/configs.py``): ``plan()`` stores
  its dump (the step id hashes it), the runner reads it validated (``StepContext.config``).
- **runner**: the function that does a kind's work, given a ``StepContext`` (``pipeline/stages.py``
  and the modules it names); it writes into the step's folder and returns extra fields for its
  ``meta.json``.
- **slurm section**: the ``launcher.slurm`` resources a kind's job array asks for. One exception,
  not a kind: the teacher's evaluation (an ``eval`` step with role ``teacher``) is the ``ceiling``,
  which may span as many GPUs as the teacher's generation (``slurm_section``).

A kind is **tracked** when its step opens a W&B run (group = the sweep, job type = the kind), and
**cached** when its folder lives in the shared cache (``<cache>/steps``) instead of the run folder:
every run of the same world finds it built.

Runners are named by import path, not imported here: planning stays free of torch and of the stage
modules (which import the planner).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from distill.pipeline import configs

STAGES = ("prepare", "generate", "train", "eval", "report")
UNTIL = ("generate", "train", "eval")  # the CLI's stage verbs: run the stages up to this one
SLURM_SECTIONS = ("generate", "train", "eval", "report", "ceiling")  # recipe launcher.slurm.<section>


@dataclass(frozen=True)
class Kind:
    name: str
    stage: str  # one of STAGES
    config: type[configs.StepConfig]  # its config slice (pipeline/configs.py)
    runner: str  # "module:function" taking a StepContext
    slurm: str  # one of SLURM_SECTIONS
    tracked: bool = False
    cached: bool = False
    # per world kind, the world fields this kind never reads: its step id ignores them (pipeline/identity.py)
    world_unread: Mapping[str, frozenset[str]] = field(default_factory=dict)
    id_word: str = ""  # what the step id starts with and hashes as its kind; "" = the name

    def __post_init__(self):
        object.__setattr__(self, "id_word", self.id_word or self.name)

    def run_function(self) -> Callable:
        module, _, function = self.runner.partition(":")
        return getattr(importlib.import_module(module), function)


# World fields unread, why. The embedded world: every problem stream skips the test split (so all read
# test_size); only the human step draws the human pool; the human step and the embedded teacher's build
# (which stops on it) read the validation split. A dataset world: the
# human pool comes from `human`; the teacher's prompts from `prompts` minus the test split; the merge
# decontaminates against `test`; lm-eval tasks, not the world, define a dataset world's evaluation.
# A reasoning-gym world reads like the embedded one: every stream skips the test split.
_POOL = frozenset({"human_pool", "val_size"})
_DATASET_ALL = frozenset({"adapter", "human", "prompts", "prompts_adapter", "test", "human_pool", "test_size",
                          "seed", "val_size"})
_STAGES_PY = "distill.pipeline.stages"
KINDS: dict[str, Kind] = {k.name: k for k in (
    # cheap preparation: a tokenizer, the untrained student and the human pool run on report's resources
    Kind("tokenizer", "prepare", configs.TokenizerConfig, f"{_STAGES_PY}:run_tokenizer", "report",
         cached=True,
         world_unread={"arithmetic": _POOL, "reasoning_gym": _POOL}),
    Kind("teacher", "prepare", configs.TeacherConfig, f"{_STAGES_PY}:run_teacher", "train",  # trains a model
         cached=True,
         world_unread={"arithmetic": frozenset({"human_pool"}), "reasoning_gym": frozenset({"human_pool"})}),
    Kind("student", "prepare", configs.StudentConfig, f"{_STAGES_PY}:run_student", "report"),
    Kind("human", "prepare", configs.HumanConfig, f"{_STAGES_PY}:run_human", "report",
         world_unread={"dataset": frozenset({"prompts", "prompts_adapter", "test", "test_size"})}),
    Kind("generate", "generate", configs.GenerateConfig, f"{_STAGES_PY}:run_generate", "generate",
         world_unread={"arithmetic": _POOL, "dataset": frozenset({"human", "human_pool", "val_size"}),
                       "reasoning_gym": _POOL}),
    Kind("merge", "generate", configs.MergeConfig, f"{_STAGES_PY}:run_merge", "generate",
         world_unread={"arithmetic": _POOL, "reasoning_gym": _POOL,
                       "dataset": frozenset({"human", "human_pool", "prompts", "prompts_adapter",
                                             "val_size"})}),
    Kind("expert", "generate", configs.ExpertConfig, "distill.human.stage:run_expert", "report"),
    Kind("train", "train", configs.TrainConfig, f"{_STAGES_PY}:run_train", "train", tracked=True),
    Kind("lineage", "train", configs.LineageConfig, "distill.pipeline.axes:run_lineage_train", "train",
         tracked=True, id_word="train"),
    Kind("eval", "eval", configs.EvalConfig, f"{_STAGES_PY}:run_eval", "eval", tracked=True,
         world_unread={"arithmetic": _POOL, "dataset": _DATASET_ALL, "reasoning_gym": _POOL}),
    Kind("verifier", "eval", configs.VerifierConfig, "distill.human.verifier_step:run_verifier", "eval",
         world_unread={"arithmetic": _POOL}),
    Kind("report", "report", configs.ReportConfig, f"{_STAGES_PY}:run_report", "report", tracked=True),
    Kind("teachers_report", "report", configs.TeachersReportConfig,
         "distill.pipeline.axes:run_teachers_report",
         "report", tracked=True, id_word="report"),
    Kind("generations_report", "report", configs.GenerationsReportConfig,
         "distill.pipeline.axes:run_generations_report", "report", tracked=True, id_word="report"),
)}


def kind_of(name: str) -> Kind:
    """The record of a kind; an unknown kind is an error, never a default."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown step kind {name!r}; known: {', '.join(KINDS)}") from None


def slurm_section(kind: str, ceiling: bool = False) -> str:
    """The ``launcher.slurm`` section a step's job array uses: its kind's, except the ceiling (an eval
    whose config says it scores the teacher: ``EvalConfig.ceiling``)."""
    return "ceiling" if kind == "eval" and ceiling else kind_of(kind).slurm
