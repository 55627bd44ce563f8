"""Recipe -> DAG of steps. Pure: no I/O, no torch.

A step's id is a hash of its kind, its own config slice and its upstream ids, so rerunning a recipe
finds finished steps by id, and changing one knob changes the ids of exactly the steps downstream of
it. Tracking and launcher settings are not part of any slice: they change where and how a step runs,
not what it computes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from distill.artifacts import stable_hash
from distill.pipeline.configs import dumped
from distill.pipeline.identity import identity_config
from distill.pipeline.kinds import STAGES, UNTIL, kind_of
from distill.recipe.schema import ArithmeticWorld, ReasoningGymWorld, Recipe, Teacher, Train


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
        word = kind_of(self.kind).id_word  # a kind split from an older one keeps its word: the same ids
        key = {"kind": word, "config": identity_config(self.kind, self.config), "deps": self.deps}
        return f"{word}-{stable_hash({**key, 'inputs': self.inputs} if self.inputs else key, 12)}"

    @property
    def label(self) -> str:
        """The labels as ``key=value`` words, for progress lines and status tables."""
        return " ".join(f"{k}={v}" for k, v in self.labels.items())

    @property
    def stage(self) -> str:
        return kind_of(self.kind).stage

    def folder(self, run_dir: Path, cache_dir: Path) -> Path:
        root = cache_dir / "steps" if kind_of(self.kind).cached else run_dir / "steps"
        return root / self.id

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "config": self.config, "deps": list(self.deps),
                "labels": self.labels, "inputs": self.inputs}


def _dump(section) -> dict:
    return section.model_dump(mode="json")


def _step(kind: str, config: dict, deps: tuple[str, ...] = (), labels: dict | None = None) -> Step:
    """A step whose config went through its kind's typed slice (pipeline/configs.py)."""
    return Step(kind, dumped(kind_of(kind).config, config), deps, dict(labels or {}))


def plan(recipe: Recipe) -> list[Step]:
    """Every step of the experiment, in a topological order."""
    world = _dump(recipe.world)
    steps: list[Step] = []
    add = steps.append

    tokenizer = None
    # worlds distill generates: it can build models
    if isinstance(recipe.world, (ArithmeticWorld, ReasoningGymWorld)):
        tokenizer = _step("tokenizer", {"world": _tokenizer_slice(recipe.world)})
        add(tokenizer)
    tok_deps = (tokenizer.id,) if tokenizer else ()

    student = _step("student", {"student": _dump(recipe.student), "seed": 0}, tok_deps)
    add(student)
    human = _step("human", _human_slice(recipe, world))
    add(human)
    if recipe.mixes is not None:
        branches = [_teacher_branch(recipe, name, spec, world, tok_deps, human)
                    for name, spec in _teacher_specs(recipe)]
        steps.extend(s for b in branches for s in b.steps)
        if recipe.teachers:
            steps.extend(_teachers_sweep(recipe, branches, student, human))
        else:
            b = branches[0]
            experts = _expert_steps(recipe, world, b.merge)
            steps.extend(experts.values())
            trains = _train_steps(recipe, student, human, b, experts)
            checks = _check_steps(recipe, trains)
            steps.extend(trains + checks)
            evals = _eval_steps(recipe, b.teacher, b.ref, student, trains + checks)
            steps.extend(evals)
            verifier = _verifier_steps(recipe, world, b, experts, trains)
            steps.extend(verifier)
            add(_step("report", {"report": _dump(recipe.report), "mixes": _mixes_slice(recipe),
                                "human_pool": _human_pool(recipe)}, tuple(e.id for e in evals + verifier)))
    if recipe.generations is not None:
        steps.extend(_generation_steps(recipe, world, student, human))
    return _unique(steps)


@dataclass(frozen=True)
class _Branch:
    """What one teacher adds: its (built) teacher, how stages find it, generation shards and merge."""

    name: str | None
    teacher: Step | None
    ref: dict
    steps: tuple[Step, ...]
    merge: Step


def _teacher_specs(recipe: Recipe) -> list[tuple[str | None, Teacher]]:
    return [(t.name, t) for t in recipe.teachers] or [(None, recipe.teacher)]


def _teacher_branch(recipe: Recipe, name: str | None, spec: Teacher, world: dict,
                    tok_deps: tuple[str, ...], human: Step) -> _Branch:
    named = {"teacher": name} if name else {}
    teacher, out = None, []
    if spec.model is None:
        teacher = _step("teacher", {"world": world, "build": _dump(spec.build)}, tok_deps, dict(named))
        out.append(teacher)
        ref = {"step": teacher.id}
    else:  # the name is a label, not content: two names for one model would be one teacher
        ref = {"model": spec.model_dump(mode="json", exclude={"build", "name"})}
    gen = recipe.generation.model_dump(mode="json", exclude={"filters", "shards"})
    shards = [_step("generate", {"generation": gen, "world": world, "teacher": ref, "shard": i,
                                "shards": recipe.generation.shards}, (teacher.id,) if teacher else (),
                   {**named, "shard": i}) for i in range(recipe.generation.shards)]
    merge = _merge(recipe, world, shards, human, dict(named))
    return _Branch(name, teacher, ref, (*out, *shards, merge), merge)


def _merge(recipe: Recipe, world: dict, shards: list[Step], human: Step, labels: dict,
           earlier: tuple[str, ...] = ()) -> Step:
    """A generation's merge; when the filters ask, deduplicated against the human pool and the
    ``earlier`` merges (the generations an accumulating lineage trains on beside this one): they become
    its dependencies, and the stages' reference sources."""
    filters, deps = _dump(recipe.generation.filters), tuple(s.id for s in shards)
    if filters.pop("dedup_against_human"):  # only when asked: every other merge keeps its id
        filters["dedup_against_human"], deps = True, (*deps, human.id, *earlier)
    return _step("merge", {"filters": filters, "world": world}, deps, labels)


def _teachers_sweep(recipe: Recipe, branches: list[_Branch], student: Step, human: Step) -> list[Step]:
    """Per teacher: its arms, evaluations and data-wall report; then one report comparing teachers.
    Steps that do not depend on the teacher (the human arm, the floor) get one id and run once."""
    out, reports = [], []
    for b in branches:
        trains = [replace(t, labels={**t.labels, "teacher": b.name}) if b.merge.id in t.deps else t
                  for t in _train_steps(recipe, student, human, b)]
        trains += _check_steps(recipe, trains)  # convergence checks keep their run's teacher label
        evals = [replace(e, labels={**e.labels, "teacher": b.name}) if e.labels["role"] == "teacher" else e
                 for e in _eval_steps(recipe, b.teacher, b.ref, student, trains)]
        reports.append(_step("report", {"report": _dump(recipe.report), "mixes": _mixes_slice(recipe),
                                       "human_pool": _human_pool(recipe)}, tuple(e.id for e in evals),
                            {"teacher": b.name}))
        out += trains + evals
    names = [b.name for b in branches]
    return out + reports + [_step("teachers_report", {"report": _dump(recipe.report), "teachers": names},
                                 tuple(r.id for r in reports), {"role": "teachers"})]


def _unique(steps: list[Step]) -> list[Step]:
    """Each id once, first occurrence kept: a step shared by teachers or by policies runs once."""
    seen: dict[str, Step] = {}
    for s in steps:
        seen.setdefault(s.id, s)
    return list(seen.values())


def _generation_steps(recipe: Recipe, world: dict, student: Step, human: Step) -> list[Step]:
    """Per seed, generation 0 on the human pool, then per policy a chain of ``count`` generations, each
    taught by the one before; every student is evaluated on the world's (human) test split."""
    g = recipe.generations
    size = g.prompts or recipe.world.human_pool
    if size is None:
        raise ValueError("generations.prompts is required when the world's human_pool is not set")
    train = _dump(recipe.train)
    out: list[Step] = []
    for seed in g.seeds:
        gen0 = _step("lineage", {"lineage": {"generation": 0, "seed": seed}, "train": train},
                    (student.id, human.id), {"generation": 0, "seed": seed})
        out.append(gen0)
        for policy in g.policies:
            parent, merges = gen0, ()
            for k in range(1, g.count + 1):
                kept = merges if policy != "replace" else ()  # the earlier pools it trains on beside this
                made = _lineage_data(recipe, world, parent, k, size, human, kept)
                merges += (made[-1].id,)
                lineage = {"policy": policy, "generation": k, "seed": seed,
                           "subsample": (g.subsample or size) if policy == "accumulate-subsample" else None}
                parent = _step("lineage", {"lineage": lineage, "train": train},
                               (student.id, human.id, *merges),
                              {"policy": policy, "generation": k, "seed": seed})
                out += made + [parent]
    cfg = {"eval": _dump(recipe.eval), "world": world}
    evals = [_step("eval", {**cfg, "model": {"step": t.id}}, (t.id,), {"role": "generation", **t.labels})
             for t in _unique(out) if t.kind == "lineage"]
    return out + evals + [_step("generations_report",
                                {"report": _dump(recipe.report), "generations": _dump(g)},
                               tuple(e.id for e in evals), {"role": "generations"})]


def _lineage_data(recipe: Recipe, world: dict, parent: Step, k: int, size: int, human: Step,
                  earlier: tuple[str, ...]) -> list[Step]:
    """Generation k's synthetic data: ``size`` fresh prompts (the k-th block of the prompt stream)
    answered by ``parent``, then merged and filtered like any teacher's data."""
    gen = {**recipe.generation.model_dump(mode="json", exclude={"filters", "shards"}), "num_prompts": size}
    labels = {k_: v for k_, v in parent.labels.items() if k_ in ("policy", "seed")} | {"generation": k}
    shards = [_step("generate",
                    {"generation": gen, "world": world, "teacher": {"step": parent.id}, "shard": i,
                                "shards": recipe.generation.shards, "prompt_start": (k - 1) * size},
                   (parent.id,), {**labels, "shard": i}) for i in range(recipe.generation.shards)]
    return shards + [_merge(recipe, world, shards, human, labels, earlier)]


def _tokenizer_slice(world: ArithmeticWorld | ReasoningGymWorld) -> dict:
    # its corpus is the teacher stream, which skips the test split: test_size is read too (the human
    # pool is not; identity_config drops it)
    return world.model_dump(mode="json")


def _mixes_slice(recipe: Recipe) -> dict:
    """The mixes as the report reads them; SFT arms without the preference keys (their ids as before)."""
    out = _dump(recipe.mixes)
    out["arms"] = [{k: v
                    for k, v in a.items() if (a["objective"] != "sft" or k not in ("objective", "preference"))
                    and (k != "allocator" or v is not None)} for a in out["arms"]]
    return out


def _human_pool(recipe: Recipe) -> int | None:
    return recipe.world.human_pool


def _human_slice(recipe: Recipe, world: dict) -> dict:
    # with an experts section, human-written rows carry their writing seconds (the ledger's)
    if recipe.experts is None:
        return {"world": world}
    return {"world": world, "write_s": recipe.experts.times.write_s}


def _expert_steps(recipe: Recipe, world: dict, merge: Step) -> dict[tuple[str, str | None], Step]:
    """One step per human-effort primitive the arms use (and per allocator an arm names): the expert's
    work on the teacher's drafts."""
    marks = {("first_error", None)} if recipe.verifier is not None else set()  # what the verifier learns from
    worked = sorted({(a.human, a.allocator) for a in recipe.mixes.arms if a.human != "human"} | marks,
                    key=lambda k: (k[0], k[1] or ""))
    # the hours budget is an allocation's (below); an expert step without one keeps its id, and so does
    # one whose experts work on this run's drafts (no source folder)
    experts = None
    if worked:
        unset = {"hours"} | ({"source"} if recipe.experts.source is None else set())
        experts = recipe.experts.model_dump(mode="json", exclude=unset)
    out = {}
    for p, allocator in worked:
        allocation = {"allocation": {"policy": allocator, "hours": recipe.experts.hours}} if allocator else {}
        # the expert reads the drafts, not the world: only its kind (the simulated expert needs the embedded
        # one)
        out[(p, allocator)] = _step("expert",
                                    {"primitive": p, "experts": experts, "world": {"kind": world["kind"]},
                                               **allocation}, (merge.id,),
                                    {"primitive": p, **({"allocator": allocator} if allocator else {})})
    return out


def _verifier_steps(recipe: Recipe, world: dict, branch: _Branch, experts: dict[str, Step],
                    trains: list[Step]) -> list[Step]:
    """Step marks as a verifier (recipe section ``verifier``): the scorers trained from the first-error
    marks rerank the samples of one arm's student, its largest N at its first seed."""
    v = recipe.verifier
    if v is None:
        return []
    arm = next(a for a in recipe.mixes.arms if a.name == (v.arm or recipe.mixes.arms[0].name))
    n, seed = max(recipe.mixes.sizes_of(arm)), recipe.mixes.seeds_of(arm)[0]
    run = next(t for t in trains if t.labels["arm"] == arm.name and t.labels["n"] == n
               and t.labels["seed"] == seed and "init" not in t.labels)
    teacher = (branch.teacher.id,) if v.init == "teacher" else ()
    return [_step("verifier",
                  {"verifier": _dump(v), "world": world, "max_new_tokens": recipe.eval.max_gen_toks},
                  (experts[("first_error", None)].id, run.id, *teacher),
                  {"role": "verifier", "arm": arm.name, "n": n,
                                                                  "seed": seed})]


def _arm_slice(arm, objective: bool = False) -> dict:
    # an arm whose human part is written from scratch keeps the slice (and step ids) it had before, and
    # so does every SFT step (an SFT arm's, or a preference arm's first step); its ladder is not part of
    # a run (the run's own N is)
    unread = {"sizes", "seeds"} | (set() if objective else {"objective", "preference"})
    unread |= {"allocator"} if arm.allocator is None else set()
    out = arm.model_dump(mode="json", exclude=unread | {"human"} if arm.human == "human" else unread)
    if "preference" in out and out["preference"]["start"] is None:  # ids from before ``start`` existed
        del out["preference"]["start"]
    return out


def _train_steps(recipe: Recipe, student: Step, human: Step, branch: _Branch,
                 experts: dict[str, Step] | None = None) -> list[Step]:
    m, merge, kd = recipe.mixes, branch.merge, recipe.train.kd
    online = {"teacher": branch.ref} if kd.weight > 0 and kd.source == "online" else {}  # in the id
    taught = (branch.teacher.id,) if online and branch.teacher else ()
    out: list[Step] = []
    # (arm, n, seed) -> its SFT step: a preference arm may start there
    sft_of: dict[tuple[str, int, int], Step] = {}
    for arm in sorted(m.arms, key=lambda a: a.objective != "sft" and a.preference.start is not None):
        for n in m.sizes_of(arm):
            for seed in m.seeds_of(arm):
                if arm.objective != "sft" and arm.preference.start:
                    out.append(_preference_step(recipe, arm, sft_of[(arm.preference.start, n, seed)]))
                    continue
                mix = {"arm": _arm_slice(arm), "n": n, "seed": seed, "unit": m.unit, "wall": _dump(m.wall),
                       "weights": dict(m.weights)}
                needs_synthetic = arm.fraction > 0 or m.wall.policy == "fill"
                key = (arm.human, arm.allocator)
                worked = (experts[key].id,) if experts and key in experts and arm.fraction < 1 else ()
                deps = (student.id, human.id) + ((merge.id,) if needs_synthetic else ()) + worked + taught
                labels = {"arm": arm.name, "fraction": arm.fraction, "n": n, "seed": seed}
                sft = sft_of[(arm.name, n, seed)] = _step("train", {"mix": mix, "train": _dump(recipe.train),
                                                                    **online}, deps, labels)
                if arm.objective == "sft":
                    out.append(sft)
                # its own SFT student (labelled ``init``: trained, not evaluated), then the preference step
                else:
                    out += [replace(sft, labels={**sft.labels, "init": "sft"}),
                            _preference_step(recipe, arm, sft)]
    return out


def _preference_step(recipe: Recipe, arm, sft: Step) -> Step:
    """The step that trains the SFT student ``sft`` (the arm's own, or the ``preference.start`` arm's) on
    the pairs of the expert items it saw, with itself as the frozen reference."""
    p = arm.preference
    train = recipe.train.model_copy(update={"tokens": None, "epochs": p.epochs, "lr": p.lr,
                                            "early_stop": None})
    mix = {**sft.config["mix"], "arm": _arm_slice(arm, objective=True)}
    return _step("train", {"mix": mix, "train": _dump(train)}, (sft.id, *sft.deps),
                 {**sft.labels, "arm": arm.name, "objective": arm.objective})


def _check_steps(recipe: Recipe, trains: list[Step]) -> list[Step]:
    """The convergence check (``report.convergence``): each arm's largest N retrained with a larger
    budget for a few seeds; the same data and seed, so the pair differs only in training."""
    check = recipe.report.convergence
    if check is None:
        return []
    largest: dict[str, int] = {}
    for t in trains:
        largest[t.labels["arm"]] = max(largest.get(t.labels["arm"], 0), t.labels["n"])
    out = []
    for t in trains:
        if "init" in t.labels:  # a preference arm's SFT student: its preference step is the run
            continue
        if t.labels["n"] == largest[t.labels["arm"]] and t.labels["seed"] in check.seeds:
            train = scaled_budget(Train.model_validate(t.config["train"]), check.factor)  # the step's own
            out.append(_step("train", {**t.config, "train": _dump(train)}, t.deps,
                             {**t.labels, "check": check.factor}))
    return out


def scaled_budget(train, factor: float):
    """``train`` with factor x its budget (tokens or epochs) and, with early stopping, its patience."""
    budget = ({"tokens": round(train.tokens * factor)} if train.tokens is not None
              else {"epochs": train.epochs * factor})
    if train.early_stop is not None:
        budget["early_stop"] = train.early_stop.model_copy(
            update={"patience": math.ceil(train.early_stop.patience * factor)})
    return train.model_copy(update=budget)


def _eval_steps(recipe: Recipe, teacher: Step | None, teacher_ref: dict, student: Step,
                trains: list[Step]) -> list[Step]:
    cfg = {"eval": _dump(recipe.eval), "world": _dump(recipe.world)}
    out = []
    if recipe.eval.teacher:
        deps = (teacher.id,) if teacher else ()
        v = recipe.generation.vllm  # the engine the ceiling is scored with is part of what it computes
        engine = {"vllm": {"parallel": v.tensor_parallel_size, "memory": v.gpu_memory_utilization}}
        engine = engine if recipe.generation.backend == "vllm" else {}
        out.append(_step("eval", {**cfg, "model": teacher_ref, **engine}, deps, {"role": "teacher"}))
    if recipe.eval.floor:
        out.append(_step("eval", {**cfg, "model": {"step": student.id}}, (student.id,), {"role": "floor"}))
    for t in (t for t in trains if "init" not in t.labels):  # an arm's SFT init is not one of its runs
        role = "check" if "check" in t.labels else "student"
        out.append(_step("eval", {**cfg, "model": {"step": t.id}}, (t.id,), {"role": role, **t.labels}))
    return out


def select(steps: list[Step], until: str | None) -> list[Step]:
    """The steps of the stages up to and including ``until`` (all of them when None)."""
    if until is None:
        return steps
    if until not in UNTIL:
        raise ValueError(f"cannot stop after stage {until!r}; one of {', '.join(UNTIL)}")
    last = STAGES.index(until)
    return [s for s in steps if STAGES.index(s.stage) <= last]
