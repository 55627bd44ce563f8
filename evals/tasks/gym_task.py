"""Data and scoring hooks of ``distill_reasoning_gym`` (a reasoning-gym world's test split in GSM8K's format).

The test split is rebuilt from the world lm-eval receives as metadata (``world``, as ``distill_arith``
reads it), so the task needs no files. Scoring is the world's verifier: what follows ``####`` goes to
the dataset's own ``score_answer``, and only a full score counts (``exact_match``); ``score`` keeps
the dataset's raw reward (gsm_symbolic gives 0.01 for a wrong number).
"""
from __future__ import annotations

import json
from typing import Any

import datasets

from distill.recipe.schema import ReasoningGymWorld
from distill.world import reasoning_gym as rg
from distill.world.adapters import gsm8k_final

FEWSHOT_ROWS = 16  # solved examples from the teacher stream, for num_fewshot > 0


def world_from(spec: ReasoningGymWorld | dict | str | None) -> ReasoningGymWorld:
    if isinstance(spec, ReasoningGymWorld):
        return spec
    spec = json.loads(spec) if isinstance(spec, str) else spec
    if not isinstance(spec, dict) or spec.get("kind") != "reasoning_gym":
        kind = spec.get("kind") if isinstance(spec, dict) else None
        raise ValueError(f"distill_reasoning_gym: metadata world.kind={kind!r}; it reads a "
                         "'reasoning_gym' world")
    return ReasoningGymWorld(**spec)


def _doc(row: dict, world_json: str) -> dict[str, str]:
    return {"id": row["id"], "prompt": row["prompt"], "completion": row["completion"],
            "answer": row["meta"]["answer"], "entry": row["meta"]["entry"], "world": world_json}


def load(world: ReasoningGymWorld | dict | str | None = None, **_ignored: Any) -> datasets.DatasetDict:
    """``custom_dataset`` hook: the world's held-out test split plus a few-shot split."""
    world = world_from(world)
    spec = world.model_dump_json()
    test = [_doc(r, spec) for r in rg.rows(world, "test", world.test_size)]
    shots = [_doc(r, spec) for r in rg.rows(world, "teacher", FEWSHOT_ROWS)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(test),
                                 "fewshot": datasets.Dataset.from_list(shots)})


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    world = ReasoningGymWorld.model_validate_json(doc["world"])
    score = rg.score_of(world, {"meta": {"entry": doc["entry"]}}, gsm8k_final(results[0]))
    return {"exact_match": float(score >= 1.0), "score": score}
