"""The records of one sweep, typed: what the DAG measured, and the only thing the reports read.

``distill/pipeline/records.py`` builds one ``SweepRecords`` from a finished sweep's files and writes it
as ``records.json``; ``evals/report`` loads it back with ``SweepRecords.of``. Unknown keys, a unit
other than examples or tokens, and scores outside [0, 1] are refused when the records are read, so
the analysis never meets a missing field or a ``.get(key, 0.0)`` default it did not mean.

Numbers that JSON may carry as int or float keep the type they came with (``Number``): the report
fingerprints its inputs by hashing the records as written, and ``500`` and ``500.0`` hash apart.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Number = int | float


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dumped(self) -> dict:
        """The record as it was given or built: unset defaults are left out (records.json's form)."""
        return self.model_dump(exclude_unset=True)


class Cost(_Record):
    """One run's resource use. A missing part costs nothing; a missing device count is one device."""

    teacher_s: Number = 0.0  # its share of teacher generation, device-seconds per device
    teacher_devices: Number = 1
    human: Number = 0  # human examples used
    train_s: Number = 0.0
    train_devices: Number = 1
    eval_s: Number = 0.0
    eval_devices: Number = 1
    human_s: Number = 0.0  # expert seconds behind the rows used, once per unique row
    train_steps: int | None = None  # recorded for the reader (early stopping), not priced

    @classmethod
    def of(cls, cost: Cost | Mapping[str, Any] | None) -> Cost:
        if isinstance(cost, Cost):
            return cost
        cost = dict(cost or {})
        if unknown := sorted(set(cost) - set(cls.model_fields)):
            raise ValueError(f"cost ledger: unknown keys {unknown} (known: {', '.join(cls.model_fields)})")
        return cls(**cost)

    @model_validator(mode="after")
    def _non_negative(self) -> Cost:
        for k in type(self).model_fields:
            v = getattr(self, k)
            if v is not None and not v >= 0:
                raise ValueError(f"cost ledger: {k}={float(v)} must be >= 0")
        return self


class Continuous(_Record):
    """The continuous score beside exact match (``evals.lmeval.continuous_record``)."""

    task: str
    name: str
    score: float
    items: list[float]


def _scores_in_range(where: str, score: Number | None, items: list[Number] | None) -> None:
    if score is not None and not 0.0 <= score <= 1.0:
        raise ValueError(f"{where}: score {float(score)} outside [0, 1] (scores are fractions)")
    if items is not None and any(not 0.0 <= v <= 1.0 for v in items):
        raise ValueError(f"{where}: items must be per-item scores in [0, 1] (0/1 for exact match)")


class Reference(_Record):
    """The teacher (ceiling) or the untrained student (floor). A bare number is its score."""

    score: Number
    items: list[Number] | None = None
    continuous: Continuous | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_number_is_a_score(cls, data: Any) -> Any:
        return {"score": data} if isinstance(data, (int, float)) and not isinstance(data, bool) else data

    @model_validator(mode="after")
    def _in_range(self) -> Reference:
        _scores_in_range("reference", self.score, self.items)
        return self


class RunRecord(_Record):
    """One student run: its mix, its score (None when the wall policy made it infeasible), its cost."""

    arm: str
    fraction: float = math.nan
    n: int
    seed: int = 0
    score: Number | None
    items: list[Number] | None = None  # per-item score, the same item order in every run
    continuous: Continuous | None = None
    feasible: bool = True
    cost: Cost = Field(default_factory=Cost)

    @model_validator(mode="after")
    def _scored_if_feasible(self) -> RunRecord:
        where = f"run arm={self.arm!r} n={self.n} seed={self.seed}"
        if self.feasible and self.score is None:
            raise ValueError(f"{where}: a feasible run needs a score")
        _scores_in_range(where, self.score, self.items)
        return self


class Check(_Record):
    """A convergence-check run: the regular run's mix retrained with ``factor`` times the budget."""

    arm: str
    fraction: float
    n: int
    seed: int
    factor: Number
    score: Number | None
    steps: int | None = None


class ArmSource(_Record):
    human: str  # the source of the arm's human part: written examples or an expert primitive
    fraction: float
    objective: str | None = None  # dpo | apo: an SFT-then-preference arm (absent: sft)
    allocator: str | None = None  # which drafts the expert worked on under a budget of hours


class ExpertWork(_Record):
    expert: str
    simulated: bool  # simulated experts are labelled so in the report
    human_s: Number | None = None  # all the expert seconds of the primitive's step


class SweepMeta(_Record):
    """What the DAG knows about the sweep; hand-written records may add their own keys (copied into
    report.json as they are)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    task: str | None = None  # the headline lm-eval task
    run_dir: str | None = None
    arms: dict[str, ArmSource] = Field(default_factory=dict)
    experts: dict[str, ExpertWork] = Field(default_factory=dict)  # per human-effort primitive


class SweepRecords(_Record):
    """Every run of one sweep (infeasible ones included), the references, and the convergence checks."""

    name: str = "sweep"
    unit: Literal["examples", "tokens"] = "examples"
    human_pool: Number | None = None  # in the unit of n
    ceiling: Reference | None = None
    floor: Reference | None = None
    runs: list[RunRecord]
    checks: list[Check] = Field(default_factory=list)
    meta: SweepMeta = Field(default_factory=SweepMeta)

    @classmethod
    def of(cls, obj: SweepRecords | Mapping[str, Any]) -> SweepRecords:
        """Records from their JSON form, with one-line errors naming the problem."""
        if isinstance(obj, SweepRecords):
            return obj
        if unknown := sorted(set(obj) - set(cls.model_fields)):
            raise ValueError(f"sweep records: unknown keys {unknown} (known: {sorted(cls.model_fields)})")
        if not obj.get("runs"):
            raise ValueError("sweep records: 'runs' is missing or empty")
        if obj.get("unit", "examples") not in ("examples", "tokens"):
            raise ValueError(f"sweep records: unit={obj['unit']!r}, expected 'examples' or 'tokens'")
        return cls.model_validate(dict(obj))

    @property
    def feasible(self) -> list[RunRecord]:
        return [r for r in self.runs if r.feasible]

    @property
    def infeasible(self) -> list[RunRecord]:
        return [r for r in self.runs if not r.feasible]


# ----------------------------------------------------------------------------- iterated self-training
class GenerationRun(_Record):
    """One student of iterated self-training: a policy's generation at a seed, its test score and the
    diversity of the rows it trained on. Generation 0 is shared by every policy and listed under each."""

    policy: str
    generation: int
    seed: int = 0
    rows: int | None = None  # rows it trained on
    score: Number | None = None
    items: list[Number] | None = None  # per-item score, the same item order in every run
    diversity: dict[str, Number] = Field(default_factory=dict)  # distinct_ngrams, distinct_answers, ...

    @model_validator(mode="after")
    def _in_range(self) -> GenerationRun:
        _scores_in_range(f"run policy={self.policy!r} generation={self.generation} seed={self.seed}",
                         self.score, self.items)
        return self


class GenerationsRecords(_Record):
    """Every student of a generations recipe: what its report reads (``records.json`` of the step)."""

    name: str | None = None
    task: str | None = None  # the lm-eval task scored
    policies: list[str] = Field(default_factory=list)
    runs: list[GenerationRun]
    run_dir: str | None = None

    @classmethod
    def of(cls, obj: GenerationsRecords | Mapping[str, Any]) -> GenerationsRecords:
        if isinstance(obj, GenerationsRecords):
            return obj
        if unknown := sorted(set(obj) - set(cls.model_fields)):
            raise ValueError(f"generations records: unknown keys {unknown} (known: "
                             f"{sorted(cls.model_fields)})")
        return cls.model_validate(dict(obj))


# ----------------------------------------------------------------------------- several teachers
class Span(_Record):
    """An interval as a report writes it (``estimate [lower, upper]`` at ``level``)."""

    estimate: Number
    lower: Number
    upper: Number
    level: Number | None = None  # absent where the report leaves it out (its claims)


class _ReportRow(_Record):
    """A row of a sweep's report.json: the fields the comparison reads are typed, the others kept as
    written."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ArmFit(_ReportRow):
    arm: str
    fraction: float
    y_inf: Span | None = None
    teacher_gap: Span | None = None


class Crossing(_ReportRow):
    leader: str
    trailer: str
    n: Span


class BestMix(_ReportRow):
    n: Number
    arm: str
    fraction: float
    within_noise: bool
    score: Span


class TeacherClaim(_ReportRow):
    """An arm's mean at its largest N against the teacher (measured, not fitted)."""

    arm: str
    n: Number
    diff: Span


class TeacherSweep(_Record):
    """One teacher's data-wall results: its references and its own report's fits, in recipe order."""

    name: str
    ceiling: Reference | None = None
    floor: Reference | None = None
    human_pool: Number | None = None
    unit: Literal["examples", "tokens"] = "examples"
    fits: list[ArmFit]
    crossovers: list[Crossing] = Field(default_factory=list)
    best_per_n: list[BestMix] = Field(default_factory=list)
    report: str  # its report.md
    at_largest: list[TeacherClaim] = Field(default_factory=list)


class TeachersRecords(_Record):
    """What the teachers report reads (``records.json`` of the step)."""

    name: str | None = None
    teachers: list[TeacherSweep]

    @classmethod
    def of(cls, obj: TeachersRecords | Mapping[str, Any]) -> TeachersRecords:
        if isinstance(obj, TeachersRecords):
            return obj
        if unknown := sorted(set(obj) - set(cls.model_fields)):
            raise ValueError(f"teachers records: unknown keys {unknown} (known: {sorted(cls.model_fields)})")
        return cls.model_validate(dict(obj))
