"""What a training run is asked to do (``TrainJob``) and what it reports (``TrainResult``).

A job is plain data: launchers write it to JSON and ``python -m distill.training.launch JOB.json``
reads it back on every process, so no launcher ever parses a recipe.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from distill.artifacts import atomic_write_json
from distill.recipe.schema import ModelSpec, Train


@dataclass(frozen=True)
class TrainJob:
    """One student trained on one data folder.

    ``data`` is a mix folder (``training.data.write_mix``: index arrays into token tables) or a
    ``datasets`` folder (``load_from_disk``; a source folder holding ``data/`` works too) with columns prompt,
    completion and optionally source, weight, teacher_topk_ids,
    teacher_topk_logprobs (one list of k per completion token, aligned with
    ``tokenizer(completion, add_special_tokens=False)``, optionally followed by one for EOS).
    ``out_dir`` receives ``model/`` (the final student, safetensors + tokenizer), ``checkpoints/``,
    ``metrics.jsonl``, ``job.json``, ``result.json`` and ``meta.json``.
    """

    model: ModelSpec  # the student to start from (a bare path or hub id is taken as ModelSpec(model=...))
    data: str
    out_dir: str
    train: Train
    seed: int = 0
    teacher: ModelSpec | None = None  # online KD: an HF model sharing the student's vocabulary
    accelerate_config: str | None = None  # overrides train.accelerate_config
    val_data: str | None = None  # a ``datasets`` folder of held-out rows: needed by train.early_stop
    progress: bool | None = None  # tqdm on rank 0; None: only when stderr is a terminal
    # sft: ``data`` holds prompt/completion rows; dpo / apo: prompt/chosen/rejected pairs (preference.py)
    objective: Literal["sft", "dpo", "apo"] = "sft"
    beta: float = 0.1  # dpo / apo: strength of the pull towards the reference
    reference: ModelSpec | None = None  # dpo / apo: the frozen reference; None: ``model``

    def __post_init__(self) -> None:
        # revision, dtype, trust_remote_code and attention travel with the model to every load site
        for name in ("model", "teacher", "reference"):
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                object.__setattr__(self, name, ModelSpec(model=str(value)))
            elif isinstance(value, dict):
                object.__setattr__(self, name, ModelSpec.model_validate(value))

    @property
    def config_path(self) -> str | None:
        return self.accelerate_config or self.train.accelerate_config

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["train"] = self.train.model_dump(mode="json")
        out["model"] = self.model.model_dump(mode="json")
        out["teacher"] = None if self.teacher is None else self.teacher.model_dump(mode="json")
        if self.objective == "sft":  # an SFT job's job.json (and so its cached out_dir) as before
            del out["objective"], out["beta"], out["reference"]
        else:
            out["reference"] = None if self.reference is None else self.reference.model_dump(mode="json")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainJob:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"train job: unknown keys {sorted(unknown)}")
        return cls(**{**data, "train": Train.model_validate(data["train"])})  # model specs: __post_init__

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> TrainJob:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class TrainResult:
    """Figures of a finished run, identical on every rank. Tokens are real (non-padding) tokens."""

    steps: int
    tokens: int
    tokens_per_source: dict[str, int]
    examples: int  # examples read, repeats included
    passes: float  # passes over the data
    final_loss: float  # the last step's loss
    loss_head: list[float]  # first steps' losses
    loss_tail: list[float]  # last steps' losses
    wall_s: float  # this invocation only (a resumed run counts from its restart)
    tokens_per_s: float
    padding_waste: float  # padded slots / computed slots, over the run
    truncated: int  # examples longer than seq_len, cut to fit
    world_size: int
    devices: str  # e.g. "2 x cpu"
    resumed_from: int = 0  # the step a resumed run started at (0: fresh)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        return cls(**data)


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "progress"}  # display only, not the run's identity


def claim_out_dir(job: TrainJob) -> bool:
    """Write ``out_dir/job.json``; a rerun of the same job is fine (returns True), another job is an error.

    An out_dir belongs to one job, so checkpoints and results are never mixed between jobs.
    """
    path = Path(job.out_dir) / "job.json"
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = None
        if existing is not None and _comparable(existing) != _comparable(job.to_dict()):
            raise ValueError(f"{job.out_dir}: holds another job (job.json differs); use a fresh out_dir")
        rerun = existing is not None
    else:
        rerun = False
    job.save(path)
    return rerun


def finished_result(job: TrainJob) -> TrainResult | None:
    """The result of this job if it already ran to the end in its out_dir."""
    try:
        existing = json.loads((Path(job.out_dir) / "job.json").read_text())
        if _comparable(existing) != _comparable(job.to_dict()):
            return None
        return TrainResult.from_dict(json.loads((Path(job.out_dir) / "result.json").read_text()))
    except (OSError, ValueError):
        return None
