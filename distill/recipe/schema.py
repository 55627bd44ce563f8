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
    # allow_inf_nan=False: no rate, budget or threshold a training can use is NaN or infinite.
    # use_attribute_docstrings: the string under each field is its description (`distill validate --explain`)
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)

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
    """World kind: the embedded, download-free column-arithmetic world."""
    min_digits: Annotated[int, Field(ge=1, le=6)] = 2
    """Fewest digits of an operand."""
    max_digits: Annotated[int, Field(ge=1, le=6)] = 3
    """Most digits of an operand (at least min_digits)."""
    ops: list[Literal["+", "-"]] = Field(default_factory=lambda: ["+", "-"], min_length=1)
    """Operations drawn: '+' and/or '-' (a - b is drawn with a >= b)."""
    human_pool: PosInt = 1000
    """Human-written worked solutions: the pool a mix's human part draws from (the data wall)."""
    test_size: PosInt = 500
    """Test problems held out and scored; at most half the distinct problems digits and ops allow."""
    val_size: Annotated[int, Field(ge=0)] = 500
    """Validation problems for train.early_stop, never in the test split; 0: none."""
    seed: Seed = 0
    """Seed of the world's problem streams (human pool, prompts, validation and test splits)."""

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
    """Hub dataset repo id, or a local format (json, csv, parquet) read from data_files."""
    name: str | None = None
    """The dataset's config name on the hub; null: its default config."""
    split: str = "train"
    """Split to read (train, test, ...)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) to read; null: the latest."""
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    """Local files (or a split -> files mapping) when path is json, csv or parquet; null: hub data."""


class DatasetWorld(Section):
    """A real task: human data, prompt pool and test split from datasets, read through an adapter."""

    kind: Literal["dataset"] = "dataset"
    """World kind: a real task read from datasets through an adapter."""
    adapter: str
    """Task adapter that reads rows and checks answers (distill/world/adapters.py)."""
    human: DataRef
    """Where the human-written solutions (the human pool) are read from."""
    prompts: DataRef
    """Where the prompts the teacher answers (the synthetic data) are read from."""
    prompts_adapter: str | None = None
    """Adapter of the prompt pool when its schema differs (e.g. metamath); null: `adapter`."""
    test: DataRef
    """Where the test split is read from (the merge decontaminates against it)."""
    human_pool: PosInt | None = None
    """Rows of the human split in the pool; null: the whole split (less the validation rows)."""
    val_size: Annotated[int, Field(ge=0)] = 0
    """Validation rows for train.early_stop: the human split's last val_size, never pooled; 0: none."""
    test_size: PosInt | None = None
    """Test rows read; null: the whole test split."""
    seed: Seed = 0
    """Recorded with the world (it enters step ids); a dataset world reads its splits unshuffled."""


class ReasoningGymWorld(Section):
    """A reasoning-gym dataset as a world (distill/world/reasoning_gym.py): seeded, unlimited prompts in
    GSM8K's format, the dataset's own ``score_answer`` as verifier, its worked solutions (where it has
    them, e.g. gsm_symbolic's ``answer_cot``) as the human pool."""

    kind: Literal["reasoning_gym"] = "reasoning_gym"
    """World kind: a reasoning-gym dataset, with seeded, unlimited prompts."""
    dataset: str
    """The reasoning-gym dataset's name: gsm_symbolic, chain_sum, basic_arithmetic, ..."""
    config: dict[str, bool | int | float | str | list[int | float | str]] = Field(default_factory=dict)
    """Options of the dataset's config (e.g. difficulty); validate checks the dataset accepts them."""
    templates: list[Annotated[int, Field(ge=0)]] | None = None
    """Only these template indices (a smaller world); null: all of the dataset's templates."""
    test_templates: PosInt | None = None
    """Templates held out as the test split's, never trained on; null: none held out."""
    human_pool: PosInt | None = None
    """Worked solutions in the human pool (the data wall); null: no human pool."""
    test_size: PosInt = 500
    """Test problems held out and scored."""
    val_size: Annotated[int, Field(ge=0)] = 200
    """Validation problems for train.early_stop, never in the test split; 0: none."""
    seed: int = 0
    """Seed of the world's problem streams and of the held-out templates."""


World = Annotated[ArithmeticWorld | DatasetWorld | ReasoningGymWorld, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- models
class Arch(Section):
    """A tiny Llama-style architecture, initialised from config (no download)."""

    hidden_size: PosInt = 64
    """Model width (a multiple of num_heads)."""
    num_layers: PosInt = 2
    """Transformer layers."""
    num_heads: PosInt = 2
    """Attention heads; head_dim (hidden_size / num_heads) >= 32 keeps the model servable by vLLM."""
    intermediate_size: PosInt | None = None
    """MLP width; null: 4 x hidden_size."""
    max_position_embeddings: PosInt = 256
    """Longest sequence the model takes, in tokens (train.seq_len must fit)."""

    @model_validator(mode="after")
    def _heads(self) -> Arch:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        return self


class TeacherBuild(Section):
    """How distill trains the embedded world's teacher (cached by content hash, built once)."""

    arch: Arch = Arch(hidden_size=128, num_layers=4, num_heads=4)
    """Architecture of the built teacher."""
    corpus_size: PosInt = 20000
    """Worked problems the built teacher trains on."""
    max_steps: PosInt = 1500
    """Most optimizer steps of the teacher's training."""
    batch_size: PosInt = 64
    """Sequences per optimizer step of the teacher's training."""
    lr: PosFloat = 2e-3
    """Learning rate of the teacher's training."""
    target_accuracy: Fraction = 0.8
    """Training stops once the held-out accuracy reaches this."""
    eval_every: PosInt = 100
    """Optimizer steps between the teacher's held-out accuracy checks."""
    eval_size: PosInt = 200
    """Held-out problems each accuracy check scores."""
    seed: Seed = 0
    """Seed of the teacher's initialisation and training order."""


class ModelSpec(Section):
    model: str | None = None
    """Local path or hub id; null: distill builds the model from `arch` (student) or `build` (teacher)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of the model; null: the latest."""
    trust_remote_code: bool = False
    """Let transformers run the model repository's own code (some hub models need it)."""
    dtype: DType = "auto"
    """Dtype the weights are loaded in; auto: the checkpoint's own."""
    attn_implementation: str | None = None
    """Attention kernel, e.g. sdpa, eager, flash_attention_2; null: the library's choice."""


class Teacher(ModelSpec):
    build: TeacherBuild = TeacherBuild()
    """How distill trains the embedded world's teacher when `model` is unset."""


class Student(ModelSpec):
    arch: Arch = Arch()
    """Architecture of the student distill builds when `model` is unset."""


class NamedTeacher(Teacher):
    """One teacher of a teachers sweep: a hub id / path, or an embedded teacher with its own build."""

    name: SafeName
    """This teacher's label: it names its steps and its column of the report."""


# ----------------------------------------------------------------------------- generation
class OpenAIBackend(Section):
    base_url: str | None = None
    """URL of the OpenAI-compatible server; null: `distill run` starts `distill serve` on loopback."""
    model: str | None = None
    """The server's model name; null: the teacher's."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable the API key is read from; never from the recipe."""
    concurrency: PosInt = 8
    """Requests in flight at once."""
    timeout_s: PosFloat = 60.0
    """Seconds a request may take before it is retried."""
    max_retries: Annotated[int, Field(ge=0)] = 5
    """Retries of a failed request before the generation step fails."""


class VLLMBackend(Section):
    tensor_parallel_size: PosInt = 1
    """GPUs the teacher is split over (vLLM tensor parallelism)."""
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    """Share of each GPU's memory vLLM may take (weights and KV cache)."""


class Filters(Section):
    exact_dedup: bool = True
    """Drop rows whose prompt and completion repeat an earlier row's exactly."""
    near_dedup_threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = 0.9
    """MinHash Jaccard similarity from which a row is a near duplicate and dropped; null: off."""
    min_chars: Annotated[int, Field(ge=0)] = 1
    """Drop completions shorter than this many characters."""
    max_chars: PosInt = 4096
    """Drop completions longer than this many characters."""
    verify: bool = True
    """Also publish a verifier-filtered source named 'verified' (rows the world's verifier accepts)."""
    decontaminate_ngram: Annotated[int, Field(ge=0)] = 8
    """Drop rows sharing a word n-gram of this length with a test prompt; 0: off."""
    dedup_against_human: bool = False
    """Also remove generated rows that copy a human-pool row, or (accumulating lineages) an earlier
    generation's row, exactly or near; those rows are not published again."""


BackendName = GENERATION_BACKENDS.literal()


class Generation(Section):
    backend: BackendName = "hf"
    """Generation backend that runs the teacher; its options are in generation.<backend>."""
    num_prompts: PosInt = 4000
    """Prompts the teacher answers (each samples_per_prompt times)."""
    samples_per_prompt: PosInt = 1
    """Completions per prompt (arms with human: picked need 2 or more)."""
    max_new_tokens: PosInt = 64
    """Most tokens in one completion."""
    temperature: Annotated[float, Field(ge=0.0)] = 0.0
    """Sampling temperature; 0: greedy."""
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    """Nucleus sampling: keep the fewest tokens holding this probability; 1: off."""
    batch_size: PosInt = 64
    """Prompts per generation batch."""
    shards: PosInt = 1
    """Generation steps the prompts are split over (run side by side, or a Slurm array)."""
    chunk_size: PosInt = 256
    """Prompts per chunk file a shard commits; a killed shard loses at most the chunk in flight."""
    seed: Seed = 0
    """Seed of the teacher's sampling."""
    logprobs_topk: Annotated[int, Field(ge=0)] = 0
    """Store the teacher's top-k log-probs per token for KD (train.kd.source: stored); 0: none."""
    filters: Filters = Filters()
    """Quality filters applied when the shards are merged."""
    openai: OpenAIBackend = OpenAIBackend()
    """Options of the openai backend."""
    vllm: VLLMBackend = VLLMBackend()
    """Options of the vllm backend."""


# ----------------------------------------------------------------------------- mixes
HumanSource = Literal[("human", *HUMAN_PRIMITIVES.names)]  # written from scratch, or a primitive's work
# the primitives in prose, "a, b or c", from the registry: a new one is named with no edit here
_WORKED = " or ".join(filter(None, (", ".join(HUMAN_PRIMITIVES.names[:-1]), HUMAN_PRIMITIVES.names[-1])))
PoolName = Literal[("human", "synthetic", "verified", *HUMAN_PRIMITIVES.names)]


class PreferenceStep(Section):
    """The preference step of an arm with objective dpo / apo: it starts from the arm's SFT student,
    which is also its frozen reference, and reads the pairs of the expert items that student saw."""

    beta: PosFloat = 0.1
    """Strength of the pull towards the reference (the DPO / APO beta)."""
    epochs: PosFloat = 2.0
    """Passes over the pairs."""
    lr: PosFloat = 5e-4
    """Learning rate of the preference step."""
    start: SafeName | None = None
    """An SFT arm on the same expert work whose students this arm starts from (and is compared with): its SFT
    step is that arm's, not one more of the same training; None: the arm trains its own."""


class Arm(Section):
    name: SafeName
    """The arm's name: labels its steps and its curve in the report."""
    fraction: Fraction
    """Synthetic fraction f of each training set (0: human only, 1: synthetic only)."""
    sizes: list[PosInt] | None = Field(default=None, min_length=1)
    """This arm's data ladder when it differs from mixes.sizes (spend runs where they inform the fit)."""
    seeds: list[Seed] | None = Field(default=None, min_length=1)
    """This arm's seeds when they differ from mixes.seeds (more where its cells are noisy)."""
    synthetic: Literal["synthetic", "verified"] = "synthetic"
    """Source of the synthetic part: every filtered row, or only those the verifier accepts."""
    human: HumanSource = "human"
    """Source of the (1 - f) part: written from scratch, or expert work on teacher drafts."""
    objective: Literal["sft", "dpo", "apo"] = "sft"
    """How the arm learns: sft, or sft then a preference step (dpo / apo) on its expert source's pairs."""
    preference: PreferenceStep = PreferenceStep()
    """The preference step; read only when objective is dpo or apo."""
    allocator: Literal["random", "verifier_failed", "disagreement", "roi"] | None = None
    """Which drafts the expert works on, under experts.hours (distill/human/allocator.py); null: the drafts of
    the first experts.drafts prompts."""

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
    """When a part needs more than its pool holds: repeat epochs, fill with synthetic, or stop."""
    max_epochs: PosInt = 4
    """Most passes over a pool under repeat; a part needing more is infeasible."""


class Mixes(Section):
    arms: list[Arm] = Field(min_length=1)
    """The arms: one mix of human and synthetic data each, trained at every size and seed."""
    sizes: list[PosInt] = Field(min_length=1)
    """The data ladder: training-set sizes N, counted in `unit`."""
    unit: Literal["examples", "tokens"] = "examples"
    """What sizes count: examples, or tokens (whole examples until the budget is reached)."""
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    """Seeds of each (arm, size): each draws its own mix and trains its own student."""
    wall: Wall = Wall()
    """What a mix does when it needs more data than a pool holds."""
    weights: dict[PoolName, PosFloat] = Field(default_factory=dict)
    """Loss weight per source pool; a pool not named here weighs 1.0."""

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

    write_s: PosFloat = 30.0
    """Seconds to write one solution from scratch."""
    edit_s: PosFloat = 18.0
    """Seconds to read one teacher draft and correct it where wrong (~0.6 x writing)."""
    mark_s: PosFloat = 12.0
    """Seconds to check one draft's steps up to the first wrong one."""
    pick_s: PosFloat = 6.0
    """Seconds to choose the better of two drafts (or neither)."""


class Experts(Section):
    """Who does the human work on teacher drafts (arms with human: edited / first_error / picked)."""

    kind: Literal["simulated", "label_studio", "argilla", "prm800k", "model", "source"] = "simulated"
    """Who does the work: simulated, people through label_studio / argilla, PRM800K marks, a model, or
    people elsewhere (source: work already done, e.g. CHAMP's marks)."""
    drafts: PosInt = 1000
    """Prompts whose teacher drafts each primitive's expert works on."""
    hours: PosFloat | None = None
    """Expert hours each allocation may spend (arms with an allocator); null: no allocation budget."""
    error_rate: Fraction = 0.0
    """Share of items the simulated expert gets wrong."""
    seed: Seed = 0
    """Seed of the simulated expert's choices and mistakes."""
    times: ExpertTimes = ExpertTimes()
    """Seconds per action: simulated and model experts, and Argilla (which records no time)."""
    model: ModelSpec | None = None
    """The stand-in expert when kind is model (its work is always labelled simulated)."""
    backend: BackendName = "hf"
    """Generation backend that runs the model expert."""
    max_new_tokens: PosInt = 64
    """Most tokens the model expert writes per item."""
    source: str | None = None
    """With kind=source: a folder holding one primitive's finished work as an expert step writes it
    (source/ and work.json), e.g. `python -m distill.human.champ OUT`'s OUT."""

    @model_validator(mode="after")
    def _model(self) -> Experts:
        for key, kind in (("model", "model"), ("source", "source")):
            if (self.kind == kind) != (getattr(self, key) is not None):
                raise ValueError(f"experts.{key} is {'required' if self.kind == kind else 'only used'} "
                                 f"with kind={kind} (kind={self.kind!r})")
        return self


class Verifier(Section):
    """Step marks as a verifier (distill/human/verifier.py): a step scorer (PRM) trained from the expert's
    first-error marks on teacher drafts reranks ``samples`` samples of one arm's student on the test
    prompts (best-of-n), beside majority vote over the same samples and an outcome-only scorer trained on
    the same drafts labelled by the world's verifier alone (no marks bought)."""

    arm: str | None = None
    """The arm whose student (largest N, first seed) is reranked; null: the first arm."""
    samples: PosInt = 8
    """Samples n per test prompt: reranked by the scorers (best-of-n) and counted by majority vote."""
    prompts: PosInt = 200
    """Test prompts reranked."""
    temperature: PosFloat = 0.8
    """Sampling temperature of the student's samples."""
    after_mark: Literal["drop", "bad"] = "drop"
    """Labels of the steps after the first mark: drop them, or label them bad."""
    held_out: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    """Share of marked drafts kept out of training, to measure localisation accuracy."""
    init: Literal["student", "teacher"] = "student"
    """The causal LM the step scorer starts from."""
    steps: PosInt = 400
    """Optimizer steps of the scorers' training."""
    batch_size: PosInt = 32
    """Examples per optimizer step of the scorers' training."""
    lr: PosFloat = 1e-3
    """Learning rate of the scorers' training (AdamW)."""
    seed: int = 0
    """Seed of the samples and of the scorers' training."""


# ----------------------------------------------------------------------------- training
class KD(Section):
    weight: Fraction = 0.0
    """KD weight w: the loss is (1-w)*CE + w*KL; 0: plain SFT."""
    kind: Literal["forward", "reverse"] = "forward"
    """KL direction: forward KL(teacher || student) or reverse KL(student || teacher)."""
    source: Literal["stored", "online"] = "stored"
    """Teacher log-probs stored at generation (generation.logprobs_topk) or computed online in training."""
    temperature: PosFloat = 1.0
    """Softmax temperature of both distributions in the KL."""


class EarlyStop(Section):
    """Train until held-out loss stops improving, then anneal: what a point on a curve should mean is
    "the best this student reaches from these N examples", not "what a fixed budget happened to reach".

    Every ``every`` optimizer steps the loss on the world's validation split (human distribution,
    never the test split) is measured. After ``patience`` checks without an improvement of at least
    ``min_delta`` the learning rate decays linearly to 0 over ``cooldown`` x the steps run so far
    (annealing removes most of the seed-to-seed noise a stop at full learning rate leaves), then
    training ends. The budget (``tokens``/``epochs``) is the cap; a run that reaches it first records so.
    """

    every: PosInt = 25
    """Optimizer steps between validation checks."""
    patience: PosInt = 3
    """Checks without improvement before the cooldown starts."""
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0
    """Least drop of the validation loss that counts as an improvement, in nats per token."""
    cooldown: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    """Length of the final linear decay to 0, as a share of the steps run so far."""


class Train(Section):
    epochs: PosFloat | None = None
    """Budget in passes over each mix; set exactly one of epochs and tokens."""
    tokens: PosInt | None = None
    """Budget in training tokens, the same compute at every N; set exactly one of epochs and tokens."""
    seq_len: PosInt = 256
    """Length of a packed row, in tokens."""
    global_batch_size: PosInt = 32
    """Packed rows per optimizer step, over all ranks."""
    micro_batch_size: PosInt = 32
    """Rows per rank per forward pass; gradient accumulation is derived."""
    lr: PosFloat = 3e-3
    """Peak learning rate of the student's AdamW, reached after warmup."""
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05
    """Share of the optimizer steps the learning rate warms up over, from 0."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Learning-rate decay after warmup."""
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    """AdamW weight decay (not on norms and biases)."""
    max_grad_norm: PosFloat = 1.0
    """Gradients are clipped to this global norm."""
    packing: bool = True
    """Pack several examples into each seq_len row; false: one example per row."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training precision: float32, or bfloat16 mixed precision."""
    checkpoint_every: PosInt = 200
    """Optimizer steps between checkpoints (an interrupted run resumes from the last)."""
    accelerate_config: str | None = None
    """accelerate config for DDP / ZeRO, e.g. recipes/accelerate/zero2.yaml; null: single process."""
    log_every: PosInt = 10
    """Optimizer steps between logged metrics."""
    kd: KD = KD()
    """Knowledge distillation from the teacher's log-probs."""
    early_stop: EarlyStop | None = None
    """Train until validation loss stops improving, then anneal; null: train the whole budget."""

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


class SelfTraining(Section):
    """Iterated self-training. Generation 0 trains on the human pool; generation g+1's teacher is
    generation g's student, and its data follows the policy: ``replace`` (only the newest synthetic
    data), ``accumulate`` (human and all synthetic data so far) or ``accumulate-subsample`` (a seeded
    sample of that pool, as large as the human pool) — Shumailov et al. 2024, Gerstgrasser et al. 2024,
    Kazdan et al. 2024. Generation uses the recipe's ``generation`` section (backend, temperature,
    filters; its ``num_prompts`` is replaced by ``prompts``)."""

    count: PosInt = 5
    """Generations after generation 0."""
    policies: list[Policy] = Field(default_factory=lambda: ["replace", "accumulate", "accumulate-subsample"],
                                   min_length=1)
    """Data policies compared, one chain each."""
    prompts: PosInt | None = None
    """Fresh prompts each generation is asked to solve; null: the human pool size."""
    subsample: PosInt | None = None
    """accumulate-subsample's fixed size; null: the human pool size."""
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    """Seeds: one independent chain per seed."""
    ngram: PosInt = 3
    """n of the distinct-n-gram diversity measure."""

    @model_validator(mode="after")
    def _unique(self) -> SelfTraining:
        for what, values in (("policies", self.policies), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"{what} has repeated values: {values}")
        return self


# ----------------------------------------------------------------------------- eval / report
class Eval(Section):
    tasks: list[str] = Field(default_factory=lambda: ["distill_arith"], min_length=1)
    """lm-eval tasks scored: distill's own (evals/tasks) or standard ones by name."""
    include_path: str | None = None
    """Folder of extra task YAMLs; distill's own evals/tasks is always included."""
    limit: PosInt | None = None
    """Score only the first `limit` items of each task; null: all."""
    batch_size: PosInt = 64
    """Items per evaluation batch."""
    num_fewshot: Annotated[int, Field(ge=0)] = 0
    """Worked examples put before each question."""
    max_gen_toks: PosInt = 64
    """Most tokens generated per answer."""
    teacher: bool = True
    """Also evaluate the teacher (the ceiling)."""
    floor: bool = True
    """Also evaluate the untrained student (the floor)."""


class Costs(Section):
    currency: str = "USD"
    """Currency the report's costs are labelled in."""
    human_per_example: Annotated[float, Field(ge=0.0)] = 1.0
    """Price of one human-written example."""
    expert_hour: Annotated[float, Field(ge=0.0)] = 0.0
    """Price of one hour of expert time."""
    device_hour: Annotated[float, Field(ge=0.0)] = 2.0
    """Price of one device (GPU) hour of generation and training."""


class ConvergenceCheck(Section):
    """Retrain each arm's largest N with ``factor`` x the budget (tokens or epochs; early-stop patience
    too) for these seeds; the report calls the students undertrained when that moves the score by
    seed noise or more."""

    factor: Annotated[float, Field(gt=1.0)] = 2.0
    """Budget multiplier of the retrained runs."""
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    """Seeds of the retrained runs."""


class Report(Section):
    epsilon: PosFloat = 0.01
    """Gain per doubling (score units) below which an arm has saturated."""
    convergence: ConvergenceCheck | None = None
    """Retrain each arm's largest N with more budget, to catch undertrained students; null: off."""
    seed_noise: Literal["cell", "arm"] = "cell"
    """Seed noise for the intervals: each cell's own seeds (cell), or pooled over an arm's sizes (arm: fewer
    seeds needed, but one noisy cell, e.g. mid-transition, widens all of the arm's)."""
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.9
    """Level of the report's intervals."""
    bootstrap: PosInt = 1000
    """Bootstrap resamples per interval."""
    costs: Costs = Costs()
    """Prices of data, expert time and compute for the report's cost figures."""


class Wandb(Section):
    mode: Literal["offline", "online", "disabled"] = "offline"
    """W&B logging: offline (local files), online, or disabled."""
    project: str = "distill"
    """W&B project the runs are logged to."""
    entity: str | None = None
    """W&B team or user; null: the account's default."""


class Tracking(Section):
    wandb: Wandb = Wandb()
    """Weights & Biases settings."""


# ----------------------------------------------------------------------------- launchers
class Resources(Section):
    partition: str | None = None
    """Slurm partition; null: the cluster's default."""
    nodes: PosInt = 1
    """Nodes per job."""
    gpus_per_node: Annotated[int, Field(ge=0)] = 0
    """GPUs per node; 0: a CPU job."""
    cpus_per_task: PosInt = 1
    """CPU cores per task."""
    mem: str = "4G"
    """Memory per node, in Slurm's units (e.g. 4G)."""
    time: str = "01:00:00"
    """Wall-time limit, in Slurm's format (HH:MM:SS)."""
    account: str | None = None
    """Slurm account charged; null: the user's default."""
    qos: str | None = None
    """Slurm quality of service; null: the default."""
    extra: list[str] = Field(default_factory=list)
    """Further '#SBATCH ...' options, verbatim."""
    processes_per_node: PosInt | None = None
    """Training processes per node; null: one per GPU (1 without)."""


class Slurm(Section):
    generate: Resources = Resources()
    """Resources of the generation and merge jobs."""
    train: Resources = Resources()
    """Resources of the training jobs (students, and a teacher distill builds)."""
    eval: Resources = Resources()
    """Resources of the evaluation and verifier jobs."""
    report: Resources = Resources()
    """Resources of the report and of the cheap preparation steps (tokenizer, student, human pool)."""
    ceiling: Resources | None = None
    """Resources of the teacher's evaluation (a model that may span GPUs); null: generate's."""
    array_parallelism: PosInt | None = None
    """Most tasks of one job array running at once ('%k'); null: no limit."""


class Launcher(Section):
    workers: PosInt = 2
    """Local executor: independent steps run side by side."""
    processes: PosInt | None = None
    """Local executor: processes per training step; null: the visible GPUs (1 on CPU)."""
    slurm: Slurm = Slurm()
    """Slurm resources per stage (read by --launcher slurm)."""


# ----------------------------------------------------------------------------- the recipe
class Recipe(Section):
    name: SafeName
    """The experiment's name: its run folder is output_dir/name."""
    description: str = ""
    """What the recipe measures; `distill ls` shows its first line."""
    output_dir: str = "runs"
    """Folder that holds the run folders."""
    world: World = ArithmeticWorld()
    """The task: human data, prompts, verifier and test split; its `kind` picks the world."""
    teacher: Teacher = Teacher()
    """The teacher model that writes the synthetic data."""
    teachers: list[NamedTeacher] = Field(default_factory=list)
    """A sweep axis of named teachers; empty: the one `teacher`."""
    student: Student = Student()
    """The student model each run trains."""
    generation: Generation = Generation()
    """How the teacher writes the synthetic data, and how that data is filtered."""
    mixes: Mixes | None = None
    """The sweep: arms x sizes x seeds; required unless the recipe has a `generations` section."""
    generations: SelfTraining | None = None
    """Iterated self-training: each generation's student teaches the next; null: off."""
    experts: Experts | None = None
    """Who works on teacher drafts; needed by arms whose human part is edited / first_error / picked."""
    verifier: Verifier | None = None
    """Step marks as a verifier: PRM best-of-n on one arm's student (needs experts); null: off."""
    train: Train
    """How each student trains."""
    eval: Eval = Eval()
    """What each student, the teacher and the floor are scored on."""
    report: Report = Report()
    """The report: saturation, intervals and costs."""
    tracking: Tracking = Tracking()
    """Experiment tracking."""
    launcher: Launcher = Launcher()
    """Where steps run: the local executor's options and the Slurm resources."""

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
