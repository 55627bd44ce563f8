"""Evaluate a causal LM with lm-eval: distill's own tasks (``evals/tasks``) and standard ones by name.

One call = one ``lm_eval.simple_evaluate`` with ``log_samples=True``; the result is condensed into a
self-describing ``results.json``: per-task metrics with stderr, per-item records (doc id, target,
filtered response, correct 0/1, log-prob) so runs compare item by item, task versions and configs,
n-samples, library versions, git revision and seeds.

Repeated in-process calls stay cheap: the ``TaskManager`` (the task index) is cached per include path
and metadata, and the environment report lm-eval attaches to every result (``pip list`` and friends
in subprocesses, ~1 s) is computed once per process. Task objects are rebuilt per call on purpose:
they are cheap (~30 ms for two 500-item tasks) and ``simple_evaluate`` mutates their config
(``num_fewshot``, ``generation_kwargs``), which must not leak from one call into the next.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distill.artifacts import atomic_write_json, git_revision, library_versions
from distill.recipe.schema import ArithmeticWorld, Eval

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
RESULTS = "results.json"
# lm-eval's own defaults, written out so results.json records them.
SEEDS = {"random_seed": 0, "numpy_random_seed": 1234, "torch_random_seed": 1234, "fewshot_random_seed": 1234}
BOOTSTRAP_ITERS = 1000  # stderr of non-mean metrics; means use the closed form
# The metric that is "the score" of a task (a fraction in [0, 1]); other tasks: the first metric.
PRIMARY = {"distill_arith": "exact_match,strict-match", "distill_arith_logprob": "logprob_per_char,none",
           "distill_reasoning_gym": "exact_match,none"}
_CORRECT = ("exact_match", "acc", "greedy_match")  # per-item metrics that mean "right or wrong"


def include_paths(extra: str | Path | list[str | Path] | None = None) -> list[str]:
    """distill's task folder (found from the package, not the CWD) plus any extra folders."""
    extra = [] if extra is None else extra if isinstance(extra, list) else [extra]
    paths = [TASKS_DIR, *(Path(p).expanduser().resolve() for p in extra)]
    for path in paths:
        if not path.is_dir():
            raise FileNotFoundError(f"eval include_path {str(path)!r} is not a folder")
    return [str(p) for p in paths]


@functools.lru_cache(maxsize=8)
def _task_manager(paths: tuple[str, ...], defaults: bool, metadata_json: str):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths), include_defaults=defaults,
                       metadata=json.loads(metadata_json))


def _world_meta(world: Any) -> dict | None:
    """The metadata distill's tasks read. Only the embedded world parameterises them; a dataset world's
    test split is evaluated through its own (standard or user) tasks, so it adds nothing here."""
    if isinstance(world, ArithmeticWorld):
        return world.model_dump()
    return dict(world) if isinstance(world, dict) else None


def task_manager(tasks: list[str], include_path=None, world: ArithmeticWorld | dict | None = None):
    """A cached TaskManager; lm-eval's built-in tasks are indexed (~10 s) only when one is asked for."""
    paths = tuple(include_paths(include_path))
    world = _world_meta(world)
    meta = json.dumps({"world": world} if world else {}, sort_keys=True)
    manager = _task_manager(paths, False, meta)
    if all(t in manager.all_tasks for t in tasks):
        return manager
    return _task_manager(paths, True, meta)


@contextlib.contextmanager
def _env_info_once() -> Iterator[None]:
    """lm-eval runs ``torch.utils.collect_env`` (subprocesses, ~1 s) on every call; the answer cannot
    change within a process, so compute it once and copy it into later results."""
    import lm_eval.evaluator as ev

    original = ev.add_env_info
    ev.add_env_info = _cached_add_env_info
    try:
        yield
    finally:
        ev.add_env_info = original


@functools.cache
def _env_info() -> dict[str, Any]:
    from lm_eval.loggers.utils import add_env_info

    info: dict[str, Any] = {}
    add_env_info(info)
    return info


def _cached_add_env_info(storage: dict[str, Any]) -> None:
    storage.update(copy.deepcopy(_env_info()))


def _make_lm(model, tokenizer, backend: str, batch_size: int, max_gen_toks: int, parallel: int = 1,
             vllm_memory: float = 0.9):
    """An lm-eval LM for a ``ModelSpec`` (or a path / hub id, or a loaded HF model object).

    ``hf``: distill's loader (the spec's revision, dtype, remote code and attention); with
    ``parallel`` > 1 the weights are sharded over the visible GPUs (``device_map="auto"``), for a
    teacher larger than one device. ``vllm``: tensor parallel over ``parallel`` devices. An
    ``lm_eval.api.model.LM`` instance is used as it is.
    """
    from lm_eval.api.model import LM

    from distill.recipe.schema import ModelSpec

    if isinstance(model, LM):
        return model
    if isinstance(model, (str, Path)):
        model = ModelSpec(model=str(model))
    if isinstance(tokenizer, (str, Path)):
        tokenizer = model.model_copy(update={"model": str(tokenizer)}) if isinstance(model, ModelSpec) \
            else ModelSpec(model=str(tokenizer))
    if backend == "vllm":
        return _vllm_lm(model, tokenizer, max_gen_toks, parallel, vllm_memory)
    if backend != "hf":
        raise ValueError(f"eval backend {backend!r} is unknown; expected 'hf' or 'vllm'")
    from lm_eval.models.huggingface import HFLM

    from distill.models import load_model, load_tokenizer
    from distill.runtime import device_for

    if isinstance(model, ModelSpec):
        tokenizer = tokenizer or model
        if parallel > 1:
            model = load_model(model, device_map="auto")
        else:
            model = load_model(model, device=device_for(0))
    if tokenizer is None:
        raise ValueError("evaluate_model: a loaded model needs its tokenizer (object or path)")
    if isinstance(tokenizer, ModelSpec):
        tokenizer = load_tokenizer(tokenizer)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)  # gen length: gen_kwargs


def _vllm_lm(spec, tokenizer, max_gen_toks: int, parallel: int, memory: float):
    from distill.recipe.schema import ModelSpec

    if importlib.util.find_spec("vllm") is None:
        raise ImportError("eval backend 'vllm' needs the vllm package (pip install 'distill[vllm]')")
    if not isinstance(spec, ModelSpec):
        raise TypeError("eval backend 'vllm' takes a model spec or path, not a loaded model object")
    from lm_eval.models.vllm_causallms import VLLM

    tok = tokenizer if isinstance(tokenizer, ModelSpec) else spec
    # vLLM picks its own attention kernels (VLLM_ATTENTION_BACKEND); attn_implementation is HF's knob
    return VLLM(pretrained=spec.model, revision=spec.revision, tokenizer=tok.model,
                tokenizer_revision=tok.revision, trust_remote_code=spec.trust_remote_code, dtype=spec.dtype,
                tensor_parallel_size=parallel, gpu_memory_utilization=memory, batch_size="auto",
                max_gen_toks=max_gen_toks)


def evaluate_model(
    model: Any,
    tokenizer: Any,
    tasks: list[str],
    *,
    include_path: str | Path | list[str | Path] | None = None,
    world: ArithmeticWorld | dict | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    max_gen_toks: int = 64,
    num_fewshot: int | None = 0,
    out_dir: str | Path | None = None,
    backend: str = "hf",
    parallel: int = 1,
    vllm_memory: float = 0.9,
) -> dict:
    """Evaluate ``model`` (a ``ModelSpec``, a path or a loaded model) on ``tasks``; return the condensed
    results, and write them to ``out_dir/results.json`` when ``out_dir`` is given. ``world``
    parameterises distill's tasks; ``parallel`` is the number of devices the model may span;
    ``vllm_memory`` vLLM's memory fraction (of each GPU, or of RAM on vLLM's CPU build)."""
    import lm_eval

    if not tasks:
        raise ValueError("evaluate_model: tasks is empty")
    start = time.time()
    manager = task_manager(list(tasks), include_path, world)
    lm = _make_lm(model, tokenizer, backend, batch_size, max_gen_toks, parallel, vllm_memory)
    with _env_info_once():
        raw = lm_eval.simple_evaluate(
            model=lm, tasks=list(tasks), task_manager=manager, limit=limit, num_fewshot=num_fewshot,
            gen_kwargs={"max_gen_toks": max_gen_toks}, log_samples=True,
            bootstrap_iters=BOOTSTRAP_ITERS, **SEEDS,
        )
    results = condense(raw, model=model, world=world, wall_s=time.time() - start,
                       settings={"limit": limit, "batch_size": batch_size, "max_gen_toks": max_gen_toks,
                                 "num_fewshot": num_fewshot, "backend": backend, "parallel": parallel,
                                 "tasks": list(tasks)})
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / RESULTS, results)
    return results


def condense(raw: dict, *, model: Any, world, wall_s: float, settings: dict) -> dict:
    """lm-eval's result dict → distill's results.json (plain JSON types only)."""
    tasks = {}
    for name, metrics in raw["results"].items():
        if name not in raw.get("configs", {}):
            continue  # a group row: its members are reported on their own
        values = {k: _plain(v) for k, v in metrics.items() if k not in ("name", "alias", "sample_len")}
        tasks[name] = {
            "score": values.get(PRIMARY.get(name) or _first_metric(values)),
            "metric": PRIMARY.get(name) or _first_metric(values),
            "metrics": values,
            "version": _plain(raw.get("versions", {}).get(name)),
            "n_samples": raw.get("n-samples", {}).get(name),
            "n_shot": raw.get("n-shot", {}).get(name),
            "config": json.loads(json.dumps(raw["configs"][name], default=str)),
            "items": [item_record(s) for s in sorted(raw["samples"].get(name, []),
                                                     key=lambda s: s["doc_id"])],
        }
    spec = model.model_dump(mode="json") if hasattr(model, "model_dump") else None
    return {
        "model": spec["model"] if spec else str(model) if isinstance(model, (str, Path)) else
        getattr(getattr(model, "config", None), "_name_or_path", None) or type(model).__name__,
        "model_spec": spec,
        "world": _world_meta(world),
        "settings": settings,
        "seeds": SEEDS,
        "tasks": tasks,
        "groups": raw.get("group_subtasks", {}),
        "versions": {**library_versions(), "lm_eval_results": raw.get("lm_eval_version")},
        "git_revision": git_revision(),
        "wall_s": round(wall_s, 3),
    }


def _first_metric(values: dict) -> str | None:
    return next((k for k in values if "_stderr" not in k), None)


def item_record(sample: dict) -> dict:
    """One eval item: enough to compare runs item by item without the whole lm-eval sample."""
    doc = sample.get("doc") or {}
    response = sample.get("filtered_resps", [None])[0]
    rec: dict[str, Any] = {
        "doc_id": int(sample["doc_id"]),
        "id": doc.get("id") if isinstance(doc, dict) else None,
        "target": _plain(sample.get("target")),
        "response": response if isinstance(response, str) else None,
    }
    for metric in sample.get("metrics", []):
        rec[metric] = _plain(sample.get(metric))
    correct = next((rec[m] for m in _CORRECT if isinstance(rec.get(m), (int, float))), None)
    rec["correct"] = None if correct is None else int(correct > 0.5)
    if isinstance(response, (list, tuple)) and response and isinstance(response[0], float):
        rec.setdefault("logprob", float(response[0]))  # loglikelihood tasks without our hook
    return rec


def _plain(value: Any) -> Any:
    """numpy scalars → Python numbers; anything else JSON cannot hold → str."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def item_vector(results: dict, task: str = "distill_arith") -> list[int]:
    """Per-item 0/1 correctness in doc order: the ``items`` of a report run record."""
    items = results["tasks"][task]["items"]
    if any(it["correct"] is None for it in items):
        raise ValueError(f"results for {task!r} have items without a correct/incorrect value")
    return [it["correct"] for it in items]


def score_record(results: dict, task: str = "distill_arith") -> dict:
    """``{"score", "items"}`` of one task: merge with ``arm/fraction/n/seed/cost`` for a report run record."""
    return {"score": results["tasks"][task]["score"], "items": item_vector(results, task)}


# Continuous scores: per item, the probability the model gives the whole reference solution
# (exp of its log-likelihood), in [0, 1] like accuracy but without the threshold of exact match,
# so at small scale it ranks students more reliably (DataDecide, Magnusson et al. 2025).
CONTINUOUS = {"distill_arith_logprob": "p(reference solution)"}


def continuous_record(results: dict) -> dict | None:
    """``{"task", "name", "score", "items"}`` of the first continuous task evaluated, or None."""
    task = next((t for t in CONTINUOUS if t in results.get("tasks", {})), None)
    if task is None:
        return None
    items = [math.exp(it["logprob"]) for it in results["tasks"][task]["items"]]
    return {"task": task, "name": CONTINUOUS[task], "score": sum(items) / max(len(items), 1), "items": items}


def eval_kwargs(cfg: Eval) -> dict:
    """``evaluate_model`` keyword arguments from the recipe's ``eval`` section (tasks included)."""
    return {"tasks": list(cfg.tasks), "include_path": cfg.include_path, "limit": cfg.limit,
            "batch_size": cfg.batch_size, "max_gen_toks": cfg.max_gen_toks, "num_fewshot": cfg.num_fewshot}
