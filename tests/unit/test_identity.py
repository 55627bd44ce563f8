"""Step identity: for every recipe field, which steps get a new id when it changes (only the steps
that read it, and what is downstream of them), and local files count by content, not by path.
Run: pytest tests/unit/test_identity.py -q"""
from __future__ import annotations

import json
import typing

import pytest
from pydantic import BaseModel

from distill.pipeline.run import planned
from distill.recipe import load_recipe
from distill.recipe.schema import Recipe
from tests.pipeline_helpers import ROOT

pytestmark = pytest.mark.unit

ALL = {"tokenizer", "teacher", "student", "human", "generate", "merge", "train", "eval", "report"}
GEN = {"generate", "merge", "train", "eval", "report"}  # the teacher's data and everything after it
TEACHER = {"teacher"} | GEN
STUDENT = {"student", "train", "eval", "report"}
HUMAN = {"human", "train", "eval", "report"}
TRAIN = {"train", "eval", "report"}
EVAL = {"eval", "report"}
NONE: set[str] = set()

# field -> (override value as YAML, the step kinds with a new id), on recipes/tiny.yaml (built
# teacher and student, arithmetic world, hf backend).
TINY: dict[str, tuple[str, set[str]]] = {
    "name": ("other", NONE), "description": ("x", NONE), "output_dir": ("elsewhere", NONE),
    "world.min_digits": ("1", ALL), "world.max_digits": ("3", ALL), "world.ops": ("['+']", ALL),
    # the teacher build stops on the validation split
    "world.seed": ("1", ALL), "world.test_size": ("61", ALL), "world.val_size": ("7", HUMAN | TEACHER),
    "world.human_pool": ("101", HUMAN),
    "teacher.model": ("MODEL", GEN),
    **{f"teacher.{k}": (v, NONE) for k, v in [("revision", "abc"), ("trust_remote_code", "true"),
                                              ("dtype", "bfloat16"), ("attn_implementation", "eager")]},
    **{f"teacher.build.{k}": (v, TEACHER) for k, v in [
        ("arch.hidden_size", "96"), ("arch.num_layers", "3"), ("arch.num_heads", "4"),
        ("arch.intermediate_size", "100"), ("arch.max_position_embeddings", "128"), ("corpus_size", "2001"),
        ("max_steps", "41"), ("batch_size", "33"), ("lr", "0.001"), ("target_accuracy", "0.5"),
        ("eval_every", "10"), ("eval_size", "41"), ("seed", "1")]},
    "student.model": ("MODEL", STUDENT),
    **{f"student.{k}": (v, NONE) for k, v in [("revision", "abc"), ("trust_remote_code", "true"),
                                              ("dtype", "bfloat16"), ("attn_implementation", "eager")]},
    **{f"student.arch.{k}": (v, STUDENT) for k, v in [
        ("hidden_size", "64"), ("num_layers", "2"), ("num_heads", "2"), ("intermediate_size", "100"),
        ("max_position_embeddings", "128")]},
    **{f"generation.{k}": (v, GEN) for k, v in [
        ("num_prompts", "201"), ("samples_per_prompt", "2"), ("max_new_tokens", "25"), ("temperature", "0.5"),
        ("top_p", "0.9"), ("batch_size", "50"), ("shards", "3"), ("chunk_size", "32"), ("seed", "1"),
        ("logprobs_topk", "2"), ("backend", "openai")]},
    **{f"generation.filters.{k}": (v, GEN - {"generate"}) for k, v in [
        ("exact_dedup", "false"), ("near_dedup_threshold", "0.5"), ("min_chars", "2"), ("max_chars", "100"),
        ("verify", "false"), ("decontaminate_ngram", "4"), ("dedup_against_human", "true")]},
    **{f"generation.openai.{k}": (v, NONE) for k, v in [
        ("base_url", "http://x"), ("model", "m"), ("api_key_env", "K"), ("concurrency", "2"),
        ("timeout_s", "5"),
        ("max_retries", "1")]},
    "generation.vllm.tensor_parallel_size": ("2", NONE),
    "generation.vllm.gpu_memory_utilization": ("0.5", NONE),
    "mixes.arms": ("[{name: human, fraction: 0.0}]", {"report"}),  # fewer arms: the human arm keeps its ids
    "mixes.sizes": ("[50, 100, 400]", TRAIN), "mixes.unit": ("tokens", TRAIN),
    "mixes.seeds": ("[0, 2]", TRAIN),
    "mixes.wall.policy": ("fill", TRAIN), "mixes.wall.max_epochs": ("2", TRAIN),
    "mixes.weights": ("{human: 2.0}", TRAIN),
    **{f"train.{k}": (v, TRAIN) for k, v in [
        ("tokens", "8192"), ("seq_len", "64"), ("global_batch_size", "16"), ("micro_batch_size", "4"),
        ("lr", "0.001"),
        ("warmup_ratio", "0.1"), ("schedule", "linear"), ("weight_decay", "0.1"), ("max_grad_norm", "0.5"),
        ("packing", "false"), ("dtype", "bfloat16"), ("checkpoint_every", "10"), ("log_every", "5"),
        ("accelerate_config", "recipes/accelerate/ddp.yaml"), ("kd.weight", "0.5"), ("kd.kind", "reverse"),
        ("kd.source", "online"), ("kd.temperature", "2.0"), ("early_stop.every", "5"),
        ("early_stop.patience", "2"),
        ("early_stop.min_delta", "0.01"), ("early_stop.cooldown", "1")]},
    "train.epochs": ("2", TRAIN),
    **{f"eval.{k}": (v, EVAL)
       for k, v in [("tasks", "[distill_arith]"), ("include_path", "TASKS"), ("limit", "5"),
                                           ("batch_size", "8"), ("num_fewshot", "1"), ("max_gen_toks", "8")]},
    "eval.teacher": ("false", {"report"}), "eval.floor": ("false", {"report"}),  # one evaluation fewer
    **{f"report.{k}": (v, {"report"}) for k, v in [
        ("epsilon", "0.02"), ("confidence", "0.8"), ("bootstrap", "99"), ("costs.currency", "EUR"),
        ("costs.human_per_example", "2.0"), ("costs.expert_hour", "50"), ("costs.device_hour", "3.0"),
        ("seed_noise", "arm")]},
    # a convergence check adds the retrained runs (new train and eval steps) and the report reading them
    "report.convergence.factor": ("3", {"train", "eval", "report"}),
    "report.convergence.seeds": ("[1]", {"train", "eval", "report"}),
}
# context a field needs to be valid at all, applied to both sides of the comparison
EXTRA = {"train.epochs": ["train.tokens=null", "train.epochs=1"],
         "train.kd.weight": ["generation.logprobs_topk=2"], "train.early_stop.every": ["world.val_size=10"],
         "train.early_stop.patience": ["world.val_size=10"],
         "train.early_stop.min_delta": ["world.val_size=10"],
         "train.early_stop.cooldown": ["world.val_size=10"], "generation.logprobs_topk": [],
         "train.kd.source": ["train.kd.weight=0.5", "generation.logprobs_topk=2"]}
# optional sections tiny.yaml does not use (tested by their owners)
ABSENT = {"teachers", "generations", "experts", "verifier"}
ANY_VALUE = ("launcher.", "tracking.")  # never part of a step: every field under these must change nothing


def _models(ann) -> list[type[BaseModel]]:
    out, stack = [], [ann]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
            continue
        stack.extend(getattr(a, "__args__", ()) or ())
        if hasattr(a, "__metadata__"):
            stack.append(a.__origin__)
    return out


def leaf_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted field, variant) for every leaf field; a union of sections (the world) gives each variant."""
    out = []
    for name, field in model.model_fields.items():
        models = _models(field.annotation)
        if typing.get_origin(field.annotation) in (list, dict) or not models:
            out.append((prefix + name, ""))
        elif len(models) > 1:
            out += [(f, m.__name__) for m in models for f, _ in leaf_fields(m, f"{prefix}{name}.")]
        else:
            out += leaf_fields(models[0], f"{prefix}{name}.")
    return out


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    model = root / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    rows = "".join(json.dumps({"question": f"q{i}", "answer": f"a #### {i}"}) + "\n" for i in range(5))
    files = {}
    for split in ("human", "prompts", "test"):
        files[split] = root / f"{split}.jsonl"
        files[split].write_text(rows)
    return {"model": model, "tasks": ROOT / "evals/tasks", **files}


def _changed(base: list, other: list) -> set[str]:
    ids = {s.id for s in base}
    return {s.kind for s in other if s.id not in ids}


def _tiny(*overrides: str) -> Recipe:
    return load_recipe(ROOT / "recipes/tiny.yaml", list(overrides))


def test_every_field_is_classified():
    fields = {f for f, variant in leaf_fields(Recipe) if variant in ("", "ArithmeticWorld")}
    todo = sorted(f for f in fields if f not in TINY and f.split(".")[0] not in ABSENT
                  and not f.startswith(ANY_VALUE) and f != "world.kind")
    assert not todo, f"classify these fields in TINY (which steps read them?): {todo}"


@pytest.mark.parametrize("field", sorted(TINY))
def test_a_field_changes_only_the_steps_that_read_it(field, local_files):
    value, expected = TINY[field]
    value = {"MODEL": str(local_files["model"]), "TASKS": str(local_files["tasks"])}.get(value, value)
    base = planned(_tiny(*EXTRA.get(field, [])))
    context = [o for o in EXTRA.get(field, []) if o.split("=", 1)[0] != field]  # the variant's value wins
    changed = _changed(base, planned(_tiny(*context, f"{field}={value}")))
    assert changed == expected, f"{field}: new ids for {sorted(changed)}, expected {sorted(expected)}"


def test_launcher_and_tracking_fields_change_nothing():
    base = planned(_tiny())
    fields = [f for f, _ in leaf_fields(Recipe) if f.startswith(ANY_VALUE)]
    assert len(fields) > 20
    for field in fields:
        for value in ("x-1", "3", "[--x]", "true", "offline", "disabled"):
            try:
                recipe = _tiny(f"{field}={value}")
            except ValueError:
                continue
            assert _changed(base, planned(recipe)) == NONE, field
            break
        else:
            pytest.fail(f"no valid value to try for {field}")


def _gsm8k(files: dict, *overrides: str) -> Recipe:
    refs = [f"world.{s}={{path: json, data_files: {files[s]}}}" for s in ("human", "prompts", "test")]
    return load_recipe(ROOT / "recipes/gsm8k/hybrid.yaml",
                       [*refs, f"teacher.model={files['model']}", "launcher.slurm.train.gpus_per_node=0",
                        "launcher.slurm.generate.gpus_per_node=0", "launcher.slurm.eval.gpus_per_node=0",
                        *overrides])


DATASET = {
    "world.adapter": ("metamath", {"human", "generate", "merge", "train", "eval", "report"}),
    "world.human.split": ("other", HUMAN), "world.human.name": ("x", HUMAN),
    "world.human.revision": ("v1", HUMAN),
    "world.human_pool": ("3", HUMAN),
    "world.prompts.split": ("other", GEN), "world.prompts_adapter": ("metamath", GEN),
    "world.test.split": ("other", GEN), "world.test_size": ("3", GEN),
    "world.seed": ("1", {"human"} | GEN),
}


@pytest.mark.parametrize("field", sorted(DATASET))
def test_dataset_world_fields_change_only_their_readers(field, local_files):
    value, expected = DATASET[field]
    changed = _changed(planned(_gsm8k(local_files)), planned(_gsm8k(local_files, f"{field}={value}")))
    assert changed == expected, f"{field}: new ids for {sorted(changed)}, expected {sorted(expected)}"


@pytest.mark.parametrize("what, expected",
                         [("human", HUMAN), ("prompts", GEN), ("test", GEN), ("model", GEN)])
def test_editing_a_local_file_in_place_changes_its_readers(what, expected, local_files):
    base = planned(_gsm8k(local_files))
    path = local_files[what] / "config.json" if what == "model" else local_files[what]
    old = path.read_text()
    try:
        path.write_text(old + " ")
        assert _changed(base, planned(_gsm8k(local_files))) == expected
    finally:
        path.write_text(old)
    assert _changed(base, planned(_gsm8k(local_files))) == NONE, "same content, same ids"


def test_a_hub_model_counts_by_its_cached_revision(tmp_path, monkeypatch):
    """A hub id found in the local HF cache adds the commit it resolves to: a new download of `main`
    (another commit) changes the steps that read the model."""
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--teacher"
    (repo / "refs").mkdir(parents=True)

    def cached(commit: str) -> list:
        (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs" / "main").write_text(commit)
        return planned(load_recipe(ROOT / "recipes/gsm8k/hybrid.yaml", ["teacher.model=org/teacher"]))

    first = cached("a" * 40)
    gen = next(s for s in first if s.kind == "generate")
    assert gen.inputs == {"org/teacher": "rev:" + "a" * 40}
    assert _changed(first, cached("b" * 40)) == GEN
