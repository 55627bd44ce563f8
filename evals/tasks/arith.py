"""Data and scoring hooks for distill's own lm-eval tasks (referenced from the YAMLs with ``!function``).

The test split is rebuilt from the embedded world (pure, seeded, no files), so the tasks work from any
working directory and need no download. World parameters arrive as lm-eval metadata under the key
``world`` (``TaskManager(metadata={"world": {...}})`` or ``lm_eval --metadata '{"world": {...}}'``);
missing ones take the ``ArithmeticWorld`` defaults. lm-eval passes every metadata key (task version,
model args from the CLI, ...) to ``load``; only ``world`` is read.
"""
from __future__ import annotations

import json
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


def load(world: ArithmeticWorld | dict | str | None = None, **_ignored: Any) -> datasets.DatasetDict:
    """``custom_dataset`` hook: the world's held-out test split plus a small few-shot split."""
    world = world_from(world)
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
