"""A reasoning-gym dataset as a world: the field's procedural tasks, scored by their own ``score_answer``.

Each stream (test, human, prompts, teacher, val) is one reasoning-gym dataset with its own seed, derived
from the world's seed and the stream's name, so every stream is unlimited and reproducible; item ``i``
of a stream does not depend on how many items are asked for (reasoning-gym seeds each item from the
dataset seed and its index). Training streams skip every question of the test split. With
``test_templates`` the split is by template instead: the test split draws only from a few held-out
templates and no training stream ever sees them, so a curve separates learning the task from
memorising its templates.

Rows are written and read in GSM8K's format through ``world/adapters.py`` (the prompt
``Question: ...\\nAnswer:``, a solution ending ``#### <answer>``), the same code path as
``recipes/gsm8k``. A worked solution the dataset ships (gsm_symbolic's ``answer_cot``, GSM8K's own
format) is a human solution; a dataset without one has no human pool. The verifier hands what follows
``####`` to the dataset's ``score_answer``; only a full score (1.0) counts as correct, so
gsm_symbolic's 0.01 for a wrong number is wrong.
"""
from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

from distill.recipe.schema import ReasoningGymWorld
from distill.world.adapters import GSM8K, gsm8k_final
from distill.world.task import Task

STREAMS = ("test", "human", "prompts", "teacher", "val")
SOLUTION = "answer_cot"  # the metadata field of a worked, human-style solution (GSM8K's format)
TOKENIZER_VOCAB = 2048  # word problems (digits stay single tokens): ~3.1 characters a token, ~190 an example


def _gsm_symbolic_templates() -> list[int]:
    from reasoning_gym.arithmetic.gsm_symbolic.gsm_symbolic import tasks_ok

    return list(tasks_ok)


# Datasets whose items come from numbered templates: (every template, the template of item i).
TEMPLATED: dict[str, tuple[Callable[[], list[int]], Callable[[Any, int], int]]] = {
    "gsm_symbolic": (_gsm_symbolic_templates, lambda ds, i: ds.task_indices[i]),
}


def _stream_seed(seed: int, stream: str) -> int:
    # far-apart seeds: reasoning-gym seeds item i with (dataset seed + i), so nearby seeds would share items
    return int.from_bytes(hashlib.sha256(f"{seed}/{stream}".encode()).digest()[:4], "big")


@functools.lru_cache(maxsize=64)
def _dataset(name: str, config_json: str, seed: int, size: int):
    import reasoning_gym

    return reasoning_gym.create_dataset(name, seed=seed, size=size, **json.loads(config_json))


def dataset(world: ReasoningGymWorld, stream: str, size: int):
    """The reasoning-gym dataset behind a stream, ``size`` items long."""
    return _dataset(world.dataset, json.dumps(world.config, sort_keys=True), _stream_seed(world.seed, stream),
                    size)


def templates(world: ReasoningGymWorld) -> list[int]:
    """The world's templates (its ``templates`` subset, or all the dataset has); refused if it has none."""
    if world.dataset not in TEMPLATED:
        raise ValueError(f"world.dataset={world.dataset!r} has no numbered templates (templated: "
                         f"{', '.join(TEMPLATED)}); drop world.templates and world.test_templates")
    return sorted(world.templates) if world.templates is not None else TEMPLATED[world.dataset][0]()


def test_templates(world: ReasoningGymWorld) -> frozenset[int]:
    """The templates held out for the test split (a seeded choice among the world's), or none."""
    if world.test_templates is None:
        return frozenset()
    pool = templates(world)
    return frozenset(random.Random(f"{world.seed}/test-templates").sample(pool, world.test_templates))


def _wanted(world: ReasoningGymWorld, stream: str) -> Callable[[int], bool]:
    """Which templates a stream draws from."""
    held = test_templates(world)
    allowed = set(templates(world)) if world.templates is not None else None
    if stream == "test" and held:
        return held.__contains__
    return lambda t: (allowed is None or t in allowed) and t not in held


def _capacity(count: int) -> int:
    """The dataset length that holds item ``count - 1``: powers of two, so the cached datasets are few."""
    return max(64, 1 << (count - 1).bit_length())


def template_of(world: ReasoningGymWorld, stream: str, index: int) -> int:
    """The template item ``index`` of a stream is drawn from (templated datasets only)."""
    return TEMPLATED[world.dataset][1](dataset(world, stream, _capacity(index + 1)), index)


def entries(world: ReasoningGymWorld, stream: str, count: int) -> list[tuple[int, dict]]:
    """``count`` (index, item) pairs of a stream, in order; training streams skip the test split."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; expected one of {STREAMS}")
    templated = world.templates is not None or world.test_templates is not None
    wanted = _wanted(world, stream) if templated else None
    held_out = _test_questions(world.model_dump_json()) if stream != "test" else frozenset()
    out: list[tuple[int, dict]] = []
    index, ds = 0, dataset(world, stream, _capacity(count))
    while len(out) < count:
        if index >= len(ds):
            ds = dataset(world, stream, _capacity(index + 1))
        if wanted is None or wanted(TEMPLATED[world.dataset][1](ds, index)):
            item = ds[index]
            if item["question"] not in held_out:
                out.append((index, item))
        index += 1
        if index > 1000 * (count + 10):
            raise ValueError(f"world {world.dataset!r}: stream {stream!r} found {len(out)} of {count} items "
                             f"in {index} draws (templates too few?)")
    return out


@functools.lru_cache(maxsize=8)
def _test_questions(world_json: str) -> frozenset[str]:
    world = ReasoningGymWorld.model_validate_json(world_json)
    return frozenset(item["question"] for _, item in entries(world, "test", world.test_size))


def has_solutions(world: ReasoningGymWorld) -> bool:
    """Whether the dataset ships worked solutions (the human pool's completions)."""
    return SOLUTION in (dataset(world, "human", 1)[0].get("metadata") or {})


def _row(stream: str, index: int, item: dict, solution_only: bool = False) -> dict:
    """A source row in GSM8K's format; the answer-only ``#### <answer>`` where the dataset has no solution."""
    solution = (item.get("metadata") or {}).get(SOLUTION)
    if solution_only and not solution:
        raise ValueError(f"item {stream}-{index} has no {SOLUTION}")
    answer = str(item["answer"])
    entry = json.dumps({"question": item["question"], "answer": item["answer"],
                        "metadata": item.get("metadata") or {}}, default=str)
    return {"id": f"{stream}-{index}", "prompt": GSM8K.prompt({"question": item["question"]}),
            "completion": GSM8K.completion({"answer": solution or f"#### {answer}"}), "origin": "human",
            "meta": {"answer": answer, "entry": entry}}


def scorer(world: ReasoningGymWorld) -> Callable[[dict, str | None], bool]:
    """The dataset's own ``score_answer`` on the row's item; a full score is correct."""

    def score(row: dict, answer: str | None) -> bool:
        return score_of(world, row, answer) >= 1.0

    return score


def score_of(world: ReasoningGymWorld, row: dict, answer: str | None) -> float:
    entry = json.loads((row.get("meta") or {})["entry"])
    return float(dataset(world, "test", 1).score_answer(answer, entry))


def rows(world: ReasoningGymWorld, stream: str, count: int, solution_only: bool = False) -> list[dict]:
    return [_row(stream, i, item, solution_only) for i, item in entries(world, stream, count)]


def human(world: ReasoningGymWorld) -> list[dict]:
    if world.human_pool is None:
        return []
    if not has_solutions(world):
        raise ValueError(no_human_solutions(world))
    return rows(world, "human", world.human_pool, solution_only=True)


def no_human_solutions(world: ReasoningGymWorld) -> str:
    return (f"world.dataset={world.dataset!r} has no human solutions (no metadata {SOLUTION!r}): "
            "set world.human_pool to null and train synthetic arms only")


def reasoning_gym_task(world: ReasoningGymWorld) -> Task:
    def prompts(count: int) -> list[dict]:
        return [{"id": r["id"], "prompt": r["prompt"], "meta": r["meta"]}
                for r in rows(world, "prompts", count)]

    return Task(name=f"reasoning_gym/{world.dataset}", human=lambda: human(world), prompts=prompts,
                test=lambda: rows(world, "test", world.test_size), extract_answer=gsm8k_final,
                val=lambda: rows(world, "val", world.val_size), scorer=scorer(world),
                corpus=lambda count: rows(world, "teacher", count))


def tokenizer_corpus(world: ReasoningGymWorld, lines: int = 2000) -> list[str]:
    """Text to train the world's tokenizer on: prompts and solutions from the teacher stream."""
    return [r["prompt"] + r["completion"] for r in rows(world, "teacher", lines)]


def check(world: ReasoningGymWorld) -> str | None:
    """What is wrong with the world's dataset, name, config or templates (one line), or None."""
    from reasoning_gym.factory import DATASETS

    from distill.registry import did_you_mean

    if world.dataset not in DATASETS:
        return (f"world.dataset={world.dataset!r}: no such reasoning-gym "
                f"dataset{did_you_mean(world.dataset, DATASETS)}")
    try:
        dataset(world, "test", 1)[0]
    except (TypeError, ValueError, AssertionError, KeyError) as exc:
        return f"world.config={world.config!r}: reasoning-gym {world.dataset!r} refuses it ({exc})"
    if world.templates is None and world.test_templates is None:
        return None
    try:
        pool = templates(world)
    except ValueError as exc:
        return str(exc)
    if unknown := sorted(set(pool) - set(TEMPLATED[world.dataset][0]())):
        return f"world.templates: {unknown} are not templates of {world.dataset!r}"
    if world.test_templates is not None and world.test_templates >= len(pool):
        return (f"world.test_templates={world.test_templates}: leaves no template to train on "
                f"(the world has {len(pool)})")
    return None
