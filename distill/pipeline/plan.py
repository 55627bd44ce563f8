"""Recipe -> DAG of steps. Pure: no I/O, no torch.

A step's id is a hash of its kind, its own config slice and its upstream ids, so rerunning a recipe
finds finished steps by id, and changing one knob changes the ids of exactly the steps downstream of
it. Tracking and launcher settings are not part of any slice: they change where and how a step runs,
not what it computes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distill.artifacts import stable_hash
from distill.pipeline.identity import identity_config
from distill.recipe.schema import ArithmeticWorld, Recipe, Teacher

STAGE_OF = {"tokenizer": "prepare", "teacher": "prepare", "student": "prepare", "human": "prepare",
            "generate": "generate", "merge": "generate", "train": "train", "eval": "eval",
            "report": "report"}
STAGE_ORDER = ("prepare", "generate", "train", "eval", "report")
CACHED_KINDS = ("tokenizer", "teacher")  # shared across runs through the cache folder: built once


@dataclass(frozen=True)
class Step:
    kind: str
    config: dict
    deps: tuple[str, ...] = ()
    labels: dict = field(default_factory=dict)  # what the step is, for people: arm, n, seed, role, shard
    inputs: dict = field(default_factory=dict)  # {local path: content fingerprint} (pipeline/identity.py)

    @property
    def id(self) -> str:
        # only the fields the step reads count (identity_config), plus the content of its local files
        key = {"kind": self.kind, "config": identity_config(self.kind, self.config), "deps": self.deps}
        return f"{self.kind}-{stable_hash({**key, 'inputs': self.inputs} if self.inputs else key, 12)}"

    @property
    def label(self) -> str:
        """The labels as ``key=value`` words, for progress lines and status tables."""
        return " ".join(f"{k}={v}" for k, v in self.labels.items())

    @property
    def stage(self) -> str:
        return STAGE_OF[self.kind]

    def folder(self, run_dir: Path, cache_dir: Path) -> Path:
        root = cache_dir / "steps" if self.kind in CACHED_KINDS else run_dir / "steps"
        return root / self.id

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "config": self.config, "deps": list(self.deps),
                "labels": self.labels, "inputs": self.inputs}


def _dump(section) -> dict:
    return section.model_dump(mode="json")


def plan(recipe: Recipe) -> list[Step]:
    """Every step of the experiment, in a topological order."""
    world = _dump(recipe.world)
    steps: list[Step] = []
    add = steps.append

    tokenizer = None
    if isinstance(recipe.world, ArithmeticWorld):
        tokenizer = Step("tokenizer", {"world": _tokenizer_slice(recipe.world)})
        add(tokenizer)
    tok_deps = (tokenizer.id,) if tokenizer else ()

    if recipe.teacher.model is None:
        teacher = Step("teacher", {"world": world, "build": _dump(recipe.teacher.build)}, tok_deps)
        add(teacher)
        teacher_ref = {"step": teacher.id}
    else:
        teacher = None
        teacher_ref = {"model": recipe.teacher.model_dump(mode="json", exclude={"build"})}
    student = Step("student", {"student": _dump(recipe.student), "seed": 0}, tok_deps)
    add(student)
    human = Step("human", {"world": world})
    add(human)

    teacher_deps = (teacher.id,) if teacher else ()
    gen = recipe.generation.model_dump(mode="json", exclude={"filters", "shards"})
    shards = [Step("generate", {"generation": gen, "world": world, "teacher": teacher_ref,
                                "shard": i, "shards": recipe.generation.shards}, teacher_deps,
                   {"shard": i}) for i in range(recipe.generation.shards)]
    steps.extend(shards)
    merge = Step("merge", {"filters": _dump(recipe.generation.filters), "world": world},
                 tuple(s.id for s in shards))
    add(merge)

    trains = _train_steps(recipe, student, human, merge)
    steps.extend(trains)
    evals = _eval_steps(recipe, teacher, teacher_ref, student, trains)
    steps.extend(evals)
    add(Step("report", {"report": _dump(recipe.report), "mixes": _dump(recipe.mixes),
                        "human_pool": _human_pool(recipe)}, tuple(e.id for e in evals)))
    return steps


def _tokenizer_slice(world: ArithmeticWorld) -> dict:
    # its corpus is the teacher stream, which skips the test split: test_size is read too (the human
    # pool is not; identity_config drops it)
    return world.model_dump(mode="json")


def _human_pool(recipe: Recipe) -> int | None:
    return recipe.world.human_pool


def _train_steps(recipe: Recipe, student: Step, human: Step, merge: Step) -> list[Step]:
    m = recipe.mixes
    out = []
    for arm in m.arms:
        for n in m.sizes:
            for seed in m.seeds:
                mix = {"arm": _dump(arm), "n": n, "seed": seed, "unit": m.unit, "wall": _dump(m.wall),
                       "weights": dict(m.weights)}
                needs_synthetic = arm.fraction > 0 or m.wall.policy == "fill"
                deps = (student.id, human.id) + ((merge.id,) if needs_synthetic else ())
                out.append(Step("train", {"mix": mix, "train": _dump(recipe.train)}, deps,
                                {"arm": arm.name, "fraction": arm.fraction, "n": n, "seed": seed}))
    return out


def _eval_steps(recipe: Recipe, teacher: Step | None, teacher_ref: dict, student: Step,
                trains: list[Step]) -> list[Step]:
    cfg = {"eval": _dump(recipe.eval), "world": _dump(recipe.world)}
    out = []
    if recipe.eval.teacher:
        deps = (teacher.id,) if teacher else ()
        out.append(Step("eval", {**cfg, "model": teacher_ref}, deps, {"role": "teacher"}))
    if recipe.eval.floor:
        out.append(Step("eval", {**cfg, "model": {"step": student.id}}, (student.id,), {"role": "floor"}))
    for t in trains:
        out.append(Step("eval", {**cfg, "model": {"step": t.id}}, (t.id,), {"role": "student", **t.labels}))
    return out


def select(steps: list[Step], until: str | None) -> list[Step]:
    """The steps of the stages up to and including ``until`` (all of them when None)."""
    if until is None:
        return steps
    last = STAGE_ORDER.index("generate" if until == "generate" else until)
    return [s for s in steps if STAGE_ORDER.index(s.stage) <= last]
