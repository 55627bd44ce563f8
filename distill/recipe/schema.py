"""The recipe: one typed, strict config tree that fully specifies an experiment.

Each stage owns one section. Unknown keys are errors (``extra="forbid"``); cross-field rules live in
``model_validator``s next to the fields they relate. Budgets are global (examples, tokens, rows per
optimizer step); per-rank numbers are derived at launch time, never written here.
"""
from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from distill.registry import GENERATION_BACKENDS, HUMAN_PRIMITIVES

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _path_safe(name: str) -> str:
    """Names that become folder names: no separators, no '..', nothing that escapes the output dir."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(
            f"{name!r} is not a safe name (letters, digits, '.', '_', '-'; no '/', no '..', at most "
            "100 chars)"
        )
    return name


SafeName = Annotated[str, AfterValidator(_path_safe)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0.0)]
# numpy's seeding takes 0 .. 2**32 - 1; a negative or larger seed would fail only in the step that seeds
Seed = Annotated[int, Field(ge=0, lt=2**32)]
INT64 = 2**63  # torch, numpy and Arrow hold 64-bit integers: a larger one fails in the step that reads it
DType = Literal["auto", "float32", "bfloat16", "float16"]


class Section(BaseModel):
    # allow_inf_nan=False: no rate, budget or threshold a training can use is NaN or infinite
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_reinterpreted_numbers(cls, data: Any) -> Any:
        """pydantic reads YAML's true/yes/on as the number 1 where a number is meant, and lets any
        integer through: both are refused here, naming the key."""
        for name, value in data.items() if isinstance(data, dict) else ():
            items = value if isinstance(value, list) else [value]
            field = cls.model_fields.get(name)
            if field and any(isinstance(v, bool) for v in items) and not _admits_bool(field.annotation):
                raise ValueError(f"{name}={value!r}: YAML reads true, yes, on, false, no and off as a "
                                 "yes/no, and this key takes none (quote it where text is meant: 'no')")
            if any(isinstance(v, int) and not -INT64 <= v < INT64 for v in items):
                raise ValueError(f"{name}={value!r} is larger than a 64-bit integer")
        return data


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type takes a bool (``bool``, ``bool | None``, ``Any``, ...)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_admits_bool(arg) for arg in typing.get_args(annotation) if not isinstance(arg, (str, int)))


# ----------------------------------------------------------------------------- world / task
class ArithmeticWorld(Section):
    """The embedded, download-free world: column arithmetic written out step by step."""

    kind: Literal["arithmetic"] = "arithmetic"
    min_digits: Annotated[int, Field(ge=1, le=6)] = 2
    max_digits: Annotated[int, Field(ge=1, le=6)] = 3
    ops: list[Literal["+", "-"]] = Field(default_factory=lambda: ["+", "-"], min_length=1)
    human_pool: PosInt = 1000
    test_size: PosInt = 500
    val_size: Annotated[int, Field(ge=0)] = 500  # validation split (early stopping); never the test split
    seed: Seed = 0

    @model_validator(mode="after")
    def _digits(self) -> ArithmeticWorld:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits={self.min_digits} is larger than max_digits={self.max_digits}")
        # training streams skip every test problem: a test split drawn over most of the world would
        # leave training a handful of problems, repeated (or none: drawing them would never end)
        if self.test_size > (space := self.distinct_problems()) // 2:
            raise ValueError(f"test_size={self.test_size} would hold most of the {space} distinct problems "
                             f"of {self.min_digits}..{self.max_digits} digits {''.join(self.ops)}; lower "
                             f"test_size below {space // 2 + 1} or raise max_digits")
        return self

    def distinct_problems(self) -> int:
        """How many different problems the digits and ops allow (a - b is drawn with a >= b)."""
        n = 10**self.max_digits - 10 ** (self.min_digits - 1)
        return ("+" in self.ops) * n * n + ("-" in self.ops) * n * (n + 1) // 2


class DataRef(Section):
    """A dataset on the hub (``path`` = repo id) or local (``path: json`` + ``data_files``)."""

    path: str
    name: str | None = None
    split: str = "train"
    revision: str | None = None
    data_files: str | list[str] | dict[str, str | list[str]] | None = None


class DatasetWorld(Section):
    """A real task: human data, prompt pool and test split from datasets, read through an adapter."""

    kind: Literal["dataset"] = "dataset"
    adapter: str  # how rows read and answers are checked (distill/world/adapters.py): gsm8k, ...
    human: DataRef
    prompts: DataRef
    prompts_adapter: str | None = None  # when the prompt pool has another schema (e.g. metamath)
    test: DataRef
    human_pool: PosInt | None = None  # None: the whole human split is the pool
    # validation split for early stopping: the last val_size rows of the human split, never in the pool
    val_size: Annotated[int, Field(ge=0)] = 0
    test_size: PosInt | None = None
    seed: Seed = 0


class ReasoningGymWorld(Section):
    """A reasoning-gym dataset as a world (distill/world/reasoning_gym.py): seeded, unlimited prompts in
    GSM8K's format, the dataset's own ``score_answer`` as verifier, its worked solutions (where it has
    them, e.g. gsm_symbolic's ``answer_cot``) as the human pool."""

    kind: Literal["reasoning_gym"] = "reasoning_gym"
    dataset: str  # a reasoning-gym dataset name: gsm_symbolic, chain_sum, basic_arithmetic, ...
    config: dict[str, bool | int | float | str | list[int | float | str]] = Field(default_factory=dict)
    templates: list[Annotated[int, Field(ge=0)]] | None = None  # only these templates (a smaller world)
    test_templates: PosInt | None = None  # held out by template: the test split's templates, never trained on
    human_pool: PosInt | None = None  # the human pool (the data wall); None: no human pool
    test_size: PosInt = 500
    val_size: Annotated[int, Field(ge=0)] = 200  # validation split (early stopping); never the test split
    seed: int = 0


World = Annotated[ArithmeticWorld | DatasetWorld | ReasoningGymWorld, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- models
class Arch(Section):
    """A tiny Llama-style architecture, initialised from config (no download)."""

    hidden_size: PosInt = 64
    num_layers: PosInt = 2
    num_heads: PosInt = 2  # head_dim >= 32 keeps the model servable by vLLM
    intermediate_size: PosInt | None = None  # default 4 x hidden
    max_position_embeddings: PosInt = 256

    @model_validator(mode="after")
    def _heads(self) -> Arch:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        return self


class TeacherBuild(Section):
    """How distill trains the embedded world's teacher (cached by content hash, built once)."""

    arch: Arch = Arch(hidden_size=128, num_layers=4, num_heads=4)
    corpus_size: PosInt = 20000
    max_steps: PosInt = 1500
    batch_size: PosInt = 64
    lr: PosFloat = 2e-3
    target_accuracy: Fraction = 0.8  # stop once the held-out accuracy reaches this
    eval_every: PosInt = 100
    eval_size: PosInt = 200
    seed: Seed = 0


class ModelSpec(Section):
    model: str | None = None  # local path or hub id; None: built by distill from `arch`/`build`
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: DType = "auto"
    attn_implementation: str | None = None  # e.g. sdpa, eager, flash_attention_2; None: the library's choice


class Teacher(ModelSpec):
    build: TeacherBuild = TeacherBuild()


class Student(ModelSpec):
    arch: Arch = Arch()


class NamedTeacher(Teacher):
    """One teacher of a teachers sweep: a hub id / path, or an embedded teacher with its own build."""

    name: SafeName  # labels its steps and its column of the report


# ----------------------------------------------------------------------------- generation
class OpenAIBackend(Section):
    base_url: str | None = None  # None: `distill run` starts `distill serve` on loopback for the teacher
    model: str | None = None  # the server's model name; default the teacher's
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never from the recipe
    concurrency: PosInt = 8
    timeout_s: PosFloat = 60.0
    max_retries: Annotated[int, Field(ge=0)] = 5


class VLLMBackend(Section):
    tensor_parallel_size: PosInt = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9


class Filters(Section):
    exact_dedup: bool = True
    near_dedup_threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = 0.9  # MinHash Jaccard; None: off
    min_chars: Annotated[int, Field(ge=0)] = 1
    max_chars: PosInt = 4096
    verify: bool = True  # also publish a verifier-filtered source named "verified"
    decontaminate_ngram: Annotated[int, Field(ge=0)] = 8  # 0: off
    # true: the human pool is a reference index: generated rows that copy one of its rows (exactly, or
    # near at near_dedup_threshold) are removed; its rows are never published with the synthetic ones
    dedup_against_human: bool = False


BackendName = GENERATION_BACKENDS.literal()


class Generation(Section):
    backend: BackendName = "hf"
    num_prompts: PosInt = 4000
    samples_per_prompt: PosInt = 1
    max_new_tokens: PosInt = 64
    temperature: Annotated[float, Field(ge=0.0)] = 0.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    batch_size: PosInt = 64
    shards: PosInt = 1
    chunk_size: PosInt = 256
    seed: Seed = 0
    logprobs_topk: Annotated[int, Field(ge=0)] = 0  # >0: store teacher top-k log-probs for KD
    filters: Filters = Filters()
    openai: OpenAIBackend = OpenAIBackend()
    vllm: VLLMBackend = VLLMBackend()


# ----------------------------------------------------------------------------- mixes
HumanSource = Literal[("human", *HUMAN_PRIMITIVES.names)]  # written from scratch, or a primitive's work
# the primitives in prose, "a, b or c", from the registry: a new one is named with no edit here
_WORKED = " or ".join(filter(None, (", ".join(HUMAN_PRIMITIVES.names[:-1]), HUMAN_PRIMITIVES.names[-1])))
PoolName = Literal[("human", "synthetic", "verified", *HUMAN_PRIMITIVES.names)]


class PreferenceStep(Section):
    """The preference step of an arm with objective dpo / apo: it starts from the arm's SFT student,
    which is also its frozen reference, and reads the pairs of the expert items that student saw."""

    beta: PosFloat = 0.1  # strength of the pull towards the reference
    epochs: PosFloat = 2.0  # passes over the pairs
    lr: PosFloat = 5e-4
    # an SFT arm on the same expert work whose students this arm starts from (and is compared with):
    # its SFT step is that arm's, not one more of the same training; None: the arm trains its own
    start: SafeName | None = None


class Arm(Section):
    name: SafeName
    fraction: Fraction
    # this arm's data ladder when it differs from mixes.sizes (spend runs where they inform the fit)
    sizes: list[PosInt] | None = Field(default=None, min_length=1)
    # this arm's seeds when they differ from mixes.seeds (more where its cells are noisy)
    seeds: list[Seed] | None = Field(default=None, min_length=1)
    synthetic: Literal["synthetic", "verified"] = "synthetic"
    # the source of the (1 - f) part: written from scratch, or expert work on teacher drafts
    human: HumanSource = "human"
    # how the arm learns: sft, or sft then a preference step (dpo / apo) on its expert source's pairs
    objective: Literal["sft", "dpo", "apo"] = "sft"
    preference: PreferenceStep = PreferenceStep()  # read only when objective is dpo / apo
    # which drafts the expert works on for this arm, under experts.hours (distill/human/allocator.py);
    # None: the drafts of the first experts.drafts prompts
    allocator: Literal["random", "verifier_failed", "disagreement", "roi"] | None = None

    @model_validator(mode="after")
    def _pairs(self) -> Arm:
        if self.allocator is not None and (self.human == "human" or self.fraction >= 1):
            raise ValueError(f"arm {self.name!r}: allocator={self.allocator} allocates expert work "
                             "on drafts: "
                             f"it needs human: {_WORKED} and fraction < 1")
        if self.objective != "sft" and (self.human not in ("picked", "edited") or self.fraction >= 1):
            raise ValueError(f"arm {self.name!r}: objective={self.objective} trains on an expert's pairs: "
                             f"it needs human: picked or edited and fraction < 1 (has human={self.human}, "
                             f"fraction={self.fraction})")
        return self


class Wall(Section):
    policy: Literal["repeat", "fill", "stop"] = "repeat"
    max_epochs: PosInt = 4


class Mixes(Section):
    arms: list[Arm] = Field(min_length=1)
    sizes: list[PosInt] = Field(min_length=1)
    unit: Literal["examples", "tokens"] = "examples"
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    wall: Wall = Wall()
    weights: dict[PoolName, PosFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Mixes:
        names = [a.name for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"arm names must be unique, repeated: {dup}")
        lists = [("sizes", self.sizes), ("seeds", self.seeds)]
        lists += [(f"arms.{a.name}.{what}", v) for a in self.arms for what, v in (("sizes", a.sizes),
                                                                                   ("seeds", a.seeds)) if v]
        for what, values in lists:
            if len(set(values)) != len(values):
                raise ValueError(f"{what} has repeated values: {values}")
        for arm in (a for a in self.arms if a.objective != "sft" and a.preference.start):
            self._start_check(arm)
        return self

    def _start_check(self, arm: Arm) -> None:
        """``preference.start`` names an SFT arm that trained the same student at each of this arm's runs."""
        start = next((a for a in self.arms if a.name == arm.preference.start), None)
        where = f"arms.{arm.name}.preference.start={arm.preference.start!r}"
        if start is None or start.objective != "sft":
            sft = [a.name for a in self.arms if a.objective == "sft"]
            raise ValueError(f"{where}: not an SFT arm of this recipe: {sft}")
        same = ("fraction", "synthetic", "human", "allocator")
        if differ := [k for k in same if getattr(start, k) != getattr(arm, k)]:
            raise ValueError(f"{where}: the two arms differ in {differ}: its students are not this "
                             "arm's SFT step")
        runs = {(n, s) for n in self.sizes_of(start) for s in self.seeds_of(start)}
        if missing := sorted({(n, s) for n in self.sizes_of(arm) for s in self.seeds_of(arm)} - runs):
            raise ValueError(f"{where}: it has no student at (n, seed) {missing}")

    def sizes_of(self, arm: Arm) -> list[int]:
        """The arm's data ladder: its own, else the mixes'."""
        return arm.sizes or self.sizes

    def seeds_of(self, arm: Arm) -> list[int]:
        """The arm's seeds: its own, else the mixes'."""
        return arm.seeds or self.seeds


# ----------------------------------------------------------------------------- human effort
class ExpertTimes(Section):
    """Seconds per expert action (defaults and their sources: recipes/human-effort.yaml)."""

    write_s: PosFloat = 30.0  # one solution written from scratch
    edit_s: PosFloat = 18.0  # one teacher draft read and corrected where wrong (~0.6 x writing)
    mark_s: PosFloat = 12.0  # one draft's steps checked up to the first wrong one
    pick_s: PosFloat = 6.0  # the better of two drafts chosen (or neither)


class Experts(Section):
    """Who does the human work on teacher drafts (arms with human: edited / first_error / picked)."""

    kind: Literal["simulated", "label_studio", "argilla", "prm800k", "model"] = "simulated"
    drafts: PosInt = 1000  # prompts whose teacher drafts each primitive's expert works on
    hours: PosFloat | None = None  # arms with an allocator: the expert hours each allocation may spend
    error_rate: Fraction = 0.0  # simulated expert: share of items it gets wrong
    seed: Seed = 0
    times: ExpertTimes = ExpertTimes()  # simulated and model experts; Argilla (which records no time)
    model: ModelSpec | None = None  # kind=model: the stand-in expert (always labelled simulated)
    backend: BackendName = "hf"
    max_new_tokens: PosInt = 64

    @model_validator(mode="after")
    def _model(self) -> Experts:
        if (self.kind == "model") != (self.model is not None):
            raise ValueError(f"experts.model is {'required' if self.kind == 'model' else 'only used'} "
                             f"with kind=model (kind={self.kind!r})")
        return self


class Verifier(Section):
    """Step marks as a verifier (distill/human/verifier.py): a step scorer (PRM) trained from the expert's
    first-error marks on teacher drafts reranks ``samples`` samples of one arm's student on the test
    prompts (best-of-n), beside majority vote over the same samples and an outcome-only scorer trained on
    the same drafts labelled by the world's verifier alone (no marks bought)."""

    arm: str | None = None  # the arm whose student (largest N, first seed) is reranked; None: the first arm
    samples: PosInt = 8  # n
    prompts: PosInt = 200  # test prompts reranked
    temperature: PosFloat = 0.8
    after_mark: Literal["drop", "bad"] = "drop"  # labels of the steps after the first mark
    held_out: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2  # marked drafts kept for localisation accuracy
    init: Literal["student", "teacher"] = "student"  # the causal LM the scorer starts from
    steps: PosInt = 400
    batch_size: PosInt = 32
    lr: PosFloat = 1e-3
    seed: int = 0


# ----------------------------------------------------------------------------- training
class KD(Section):
    weight: Fraction = 0.0  # 0: plain SFT; the loss is (1-w)*CE + w*KL
    kind: Literal["forward", "reverse"] = "forward"
    source: Literal["stored", "online"] = "stored"
    temperature: PosFloat = 1.0


class EarlyStop(Section):
    """Train until held-out loss stops improving, then anneal: what a point on a curve should mean is
    "the best this student reaches from these N examples", not "what a fixed budget happened to reach".

    Every ``every`` optimizer steps the loss on the world's validation split (human distribution,
    never the test split) is measured. After ``patience`` checks without an improvement of at least
    ``min_delta`` the learning rate decays linearly to 0 over ``cooldown`` x the steps run so far
    (annealing removes most of the seed-to-seed noise a stop at full learning rate leaves), then
    training ends. The budget (``tokens``/``epochs``) is the cap; a run that reaches it first records so.
    """

    every: PosInt = 25  # optimizer steps between validation checks
    patience: PosInt = 3  # checks without improvement before the cooldown starts
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0  # nats per token
    cooldown: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25  # share of the steps so far


class Train(Section):
    epochs: PosFloat | None = None
    tokens: PosInt | None = None  # fixed training tokens: the same compute at every N
    seq_len: PosInt = 256  # packed row length
    global_batch_size: PosInt = 32  # packed rows per optimizer step, over all ranks
    micro_batch_size: PosInt = 32  # rows per rank per forward; accumulation is derived
    lr: PosFloat = 3e-3
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    max_grad_norm: PosFloat = 1.0
    packing: bool = True
    dtype: Literal["float32", "bfloat16"] = "float32"
    checkpoint_every: PosInt = 200  # optimizer steps
    accelerate_config: str | None = None  # e.g. recipes/accelerate/zero2.yaml; None: single process
    log_every: PosInt = 10
    kd: KD = KD()
    early_stop: EarlyStop | None = None  # None: train the whole budget

    @model_validator(mode="after")
    def _budget(self) -> Train:
        if (self.epochs is None) == (self.tokens is None):
            raise ValueError(
                f"set exactly one training budget: epochs={self.epochs} tokens={self.tokens}"
            )
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size={self.global_batch_size} is not a multiple of "
                f"micro_batch_size={self.micro_batch_size}"
            )
        return self


# ----------------------------------------------------------------------------- generations
Policy = Literal["replace", "accumulate", "accumulate-subsample"]


class Generations(Section):
    """Iterated self-training. Generation 0 trains on the human pool; generation g+1's teacher is
    generation g's student, and its data follows the policy: ``replace`` (only the newest synthetic
    data), ``accumulate`` (human and all synthetic data so far) or ``accumulate-subsample`` (a seeded
    sample of that pool, as large as the human pool) — Shumailov et al. 2024, Gerstgrasser et al. 2024,
    Kazdan et al. 2024. Generation uses the recipe's ``generation`` section (backend, temperature,
    filters; its ``num_prompts`` is replaced by ``prompts``)."""

    count: PosInt = 5  # generations after generation 0
    policies: list[Policy] = Field(default_factory=lambda: ["replace", "accumulate", "accumulate-subsample"],
                                   min_length=1)
    # fresh prompts each generation is asked to solve; None: the human pool size
    prompts: PosInt | None = None
    subsample: PosInt | None = None  # accumulate-subsample's fixed size; None: the human pool size
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)  # one independent chain per seed
    ngram: PosInt = 3  # n of the distinct-n-gram diversity measure

    @model_validator(mode="after")
    def _unique(self) -> Generations:
        for what, values in (("policies", self.policies), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"{what} has repeated values: {values}")
        return self


# ----------------------------------------------------------------------------- eval / report
class Eval(Section):
    tasks: list[str] = Field(default_factory=lambda: ["distill_arith"], min_length=1)
    include_path: str | None = None  # extra task YAMLs; distill's own evals/tasks is always included
    limit: PosInt | None = None
    batch_size: PosInt = 64
    num_fewshot: Annotated[int, Field(ge=0)] = 0
    max_gen_toks: PosInt = 64
    teacher: bool = True  # the ceiling
    floor: bool = True  # the untrained student


class Costs(Section):
    currency: str = "USD"
    human_per_example: Annotated[float, Field(ge=0.0)] = 1.0
    expert_hour: Annotated[float, Field(ge=0.0)] = 0.0  # price of one hour of expert time
    device_hour: Annotated[float, Field(ge=0.0)] = 2.0


class ConvergenceCheck(Section):
    """Retrain each arm's largest N with ``factor`` x the budget (tokens or epochs; early-stop patience
    too) for these seeds; the report calls the students undertrained when that moves the score by
    seed noise or more."""

    factor: Annotated[float, Field(gt=1.0)] = 2.0
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)


class Report(Section):
    epsilon: PosFloat = 0.01  # gain per doubling (score units) below which an arm has saturated
    convergence: ConvergenceCheck | None = None
    # seed noise for the intervals: each cell's own seeds ("cell"), or pooled over an arm's sizes
    # ("arm": fewer seeds needed, but one noisy cell, e.g. mid-transition, widens all of the arm's)
    seed_noise: Literal["cell", "arm"] = "cell"
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.9
    bootstrap: PosInt = 1000
    costs: Costs = Costs()


class Wandb(Section):
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "distill"
    entity: str | None = None


class Tracking(Section):
    wandb: Wandb = Wandb()


# ----------------------------------------------------------------------------- launchers
class Resources(Section):
    partition: str | None = None
    nodes: PosInt = 1
    gpus_per_node: Annotated[int, Field(ge=0)] = 0
    cpus_per_task: PosInt = 1
    mem: str = "4G"
    time: str = "01:00:00"
    account: str | None = None
    qos: str | None = None
    extra: list[str] = Field(default_factory=list)  # verbatim '#SBATCH ...' options
    processes_per_node: PosInt | None = None  # training processes per node; None: one per GPU (1 without)


class Slurm(Section):
    generate: Resources = Resources()
    train: Resources = Resources()
    eval: Resources = Resources()
    report: Resources = Resources()
    # the teacher's evaluation (a model that may span GPUs); None: generate's
    ceiling: Resources | None = None
    array_parallelism: PosInt | None = None  # '%k' on arrays


class Launcher(Section):
    workers: PosInt = 2  # local executor: independent steps run side by side
    # local executor: processes per training step; None: the visible GPUs (1 on CPU)
    processes: PosInt | None = None
    slurm: Slurm = Slurm()


# ----------------------------------------------------------------------------- the recipe
class Recipe(Section):
    name: SafeName
    description: str = ""
    output_dir: str = "runs"
    world: World = ArithmeticWorld()
    teacher: Teacher = Teacher()
    teachers: list[NamedTeacher] = Field(default_factory=list)  # a sweep axis; empty: the one `teacher`
    student: Student = Student()
    generation: Generation = Generation()
    mixes: Mixes | None = None  # required unless the recipe has a `generations` section
    generations: Generations | None = None
    experts: Experts | None = None  # needed by arms whose human part is edited / first_error / picked
    verifier: Verifier | None = None  # step marks as a verifier: PRM best-of-n (needs experts)
    train: Train
    eval: Eval = Eval()
    report: Report = Report()
    tracking: Tracking = Tracking()
    launcher: Launcher = Launcher()

    @model_validator(mode="after")
    def _axes(self) -> Recipe:
        if self.mixes is None and self.generations is None:
            raise ValueError("mixes is required (or a generations section): the recipe trains no student")
        if self.teachers and "teacher" in self.model_fields_set:
            raise ValueError("set either teacher or teachers, not both")
        names = [t.name for t in self.teachers]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"teacher names must be unique, repeated: {dup}")
        specs = [t.model_dump(mode="json", exclude={"name"}) for t in self.teachers]
        if same := [t.name for i, t in enumerate(self.teachers) if specs.index(specs[i]) != i]:
            raise ValueError(f"teachers {same} repeat an earlier teacher's model and build")
        if self.world.kind == "dataset" and (bad := [t.name for t in self.teachers if t.model is None]):
            raise ValueError(f"teachers {bad} need a model: a dataset world builds none")
        return self

    @model_validator(mode="after")
    def _cross(self) -> Recipe:
        arms = self.mixes.arms if self.mixes else []
        if any(a.synthetic == "verified" for a in arms) and not self.generation.filters.verify:
            raise ValueError("an arm uses synthetic: verified but generation.filters.verify is false")
        if worked := sorted({a.human for a in arms} - {"human"}):
            if self.experts is None:
                raise ValueError(f"arms use {worked} (expert work on teacher drafts) but the recipe has no "
                                 "experts section")
            if self.teachers and (pref := [a.name for a in arms if a.objective != "sft"]):
                raise ValueError(f"arms {pref} train on an expert's pairs: not with a teachers sweep")
            if (allocated := [a for a in arms if a.allocator]) and self.experts.hours is None:
                raise ValueError(f"arms {[a.name for a in allocated]} name an allocator: set experts.hours")
            if (any(a.allocator in ("verifier_failed", "roi") for a in arms)
                and not self.generation.filters.verify):
                raise ValueError("allocators verifier_failed and roi need generation.filters.verify: true")
            if "picked" in worked and self.generation.samples_per_prompt < 2:
                raise ValueError("an arm uses human: picked, which needs generation.samples_per_prompt >= 2")
        if self.verifier is not None:
            self._verifier_check(arms)
        if (self.train.kd.weight > 0 and self.train.kd.source == "stored"
            and not self.generation.logprobs_topk):
            raise ValueError("train.kd.source=stored needs generation.logprobs_topk > 0")
        if self.train.early_stop is not None and self.world.val_size == 0:
            raise ValueError("train.early_stop needs a validation split: set world.val_size > 0")
        if self.teacher.model is None and self.world.kind == "dataset":
            raise ValueError("teacher.model is required for a dataset world (it builds none)")
        return self

    def _verifier_check(self, arms: list[Arm]) -> None:
        v = self.verifier
        if self.experts is None or self.world.kind != "arithmetic" or self.teachers:
            raise ValueError("verifier needs an experts section, the embedded world (steps separated by ';') "
                             "and one teacher")
        if v.arm is not None and v.arm not in [a.name for a in arms]:
            raise ValueError(f"verifier.arm={v.arm!r} is not an arm: {[a.name for a in arms]}")
        if v.init == "teacher" and self.teacher.model is not None:
            raise ValueError("verifier.init=teacher starts from the embedded teacher distill builds "
                             "(teacher.model unset)")
