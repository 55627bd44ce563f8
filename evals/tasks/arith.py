"""Data and scoring hooks for distill's own lm-eval tasks (referenced from the YAMLs with ``!function``).

The test split is rebuilt from the embedded world (pure, seeded, no files), so the tasks work from any
working directory and need no download. World parameters arrive as lm-eval metadata under the key
``world`` (``TaskManager(metadata={"world": {...}})`` or ``lm_eval --metadata '{"world": {...}}'``);
missing ones take the ``ArithmeticWorld`` defaults. lm-eval passes every metadata key (task version,
model args from the CLI, ...) to ``load``; only ``world`` is read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

from distill.recipe.schema import ArithmeticWorld
from distill.world import arithmetic as ar

FEWSHOT_ROWS = 16  # solved examples from a training-free stream, for num_fewshot > 0


def world_from(spec: ArithmeticWorld | dict | str | None) -> ArithmeticWorld:
    """The world a task reads: a model, a dict of fields, a JSON string, or None (defaults)."""
    if isinstance(spec, ArithmeticWorld):
        return spec
    if isinstance(spec, str):
        spec = json.loads(spec)
    spec = dict(spec or {})
    kind = spec.get("kind", "arithmetic")
    if kind != "arithmetic":
        raise ValueError(f"distill_arith tasks: metadata world.kind={kind!r}; only 'arithmetic' is supported")
    return ArithmeticWorld(**spec)


def _doc(problem: ar.Problem) -> dict[str, str]:
    row = ar.record(problem)
    return {"id": row["id"], "prompt": row["prompt"], "completion": row["completion"],
            "answer": row["meta"]["answer"]}


def world_of_model(pretrained: Any) -> dict | None:
    """The world a model distill trained was made for, found from its folder: the step's ``meta.json``
    (a built teacher's config names its world) or the run's resolved ``recipe.yaml`` (a student's
    ``runs/<name>/steps/train-<id>/model``). So the plain ``lm_eval --model_args pretrained=<that
    folder>`` command scores the run's own test split, without ``--metadata``."""
    import yaml

    if not isinstance(pretrained, str) or not Path(pretrained).is_dir():
        return None
    for folder in Path(pretrained).resolve().parents[:4]:
        meta = folder / "meta.json"
        if meta.is_file():
            world = ((json.loads(meta.read_text()).get("step") or {}).get("config") or {}).get("world")
            if isinstance(world, dict) and world.get("kind", "arithmetic") == "arithmetic":
                return world
        recipe = folder / "recipe.yaml"
        if recipe.is_file() and (folder / "dag.json").is_file():
            world = (yaml.safe_load(recipe.read_text()) or {}).get("world")
            return world if isinstance(world, dict) and world.get("kind") == "arithmetic" else None
    return None


def load(world: ArithmeticWorld | dict | str | None = None, pretrained: Any = None,
         **_ignored: Any) -> datasets.DatasetDict:
    """``custom_dataset`` hook: the world's held-out test split plus a small few-shot split. Without a
    ``world`` in the metadata, the world of the model being evaluated (``pretrained``, which lm-eval's
    CLI passes along with the other model args), else the defaults."""
    world = world_from(world if world is not None else world_of_model(pretrained))
    test = [_doc(p) for p in ar.problems(world, "test", world.test_size)]
    shots = [_doc(p) for p in ar.problems(world, "teacher", FEWSHOT_ROWS)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(test),
                                 "fewshot": datasets.Dataset.from_list(shots)})


def logprob_results(doc: dict, results: list[tuple[float, bool]]) -> dict[str, float]:
    """Continuous score: log-probability (nats) of the reference solution given the prompt.

    Per character rather than per token, so students with different tokenizers compare.
    ``greedy_match`` is 1 when greedy decoding would reproduce the whole reference.
    """
    logprob, is_greedy = results[0]
    return {"logprob": float(logprob),
            "logprob_per_char": float(logprob) / max(len(doc["completion"]), 1),
            "greedy_match": int(is_greedy)}
