"""A real task from datasets: human pool, teacher prompt pool and test split, read through adapters.

Each ``DataRef`` is a hub dataset (``path: openai/gsm8k``, ``name: main``) or local files
(``path: json``, ``data_files: ...``); both go through ``datasets.load_dataset``, so the code path
that reads the hub is the one tests exercise with local files in the hub's schema.
"""
from __future__ import annotations

import hashlib

from distill.recipe.schema import DataRef, DatasetWorld
from distill.world.adapters import Adapter, get_adapter
from distill.world.task import Task


def load_rows(ref: DataRef) -> list[dict]:
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    kwargs = {"data_files": ref.data_files} if ref.data_files is not None else {}
    try:
        data = load_dataset(ref.path, ref.name, split=ref.split, revision=ref.revision, **kwargs)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"dataset {ref.path!r} (data_files={ref.data_files!r}): {exc}") from None
    except DatasetGenerationError as exc:  # "An error occurred while generating the dataset": say where
        raise ValueError(_bad_row(ref) or f"dataset {ref.path!r} (data_files={ref.data_files!r}): "
                         f"{exc.__cause__ or exc}") from exc
    return list(data)


def _bad_row(ref: DataRef) -> str | None:
    """The first line of a local JSON-lines file that is not a JSON object, as ``file line N: why``."""
    import glob
    import json

    from distill.recipe.checks import data_files

    if ref.path != "json":
        return None
    for pattern in data_files(ref):
        for name in sorted(glob.glob(pattern)) or [pattern]:
            try:
                with open(name, encoding="utf-8") as handle:
                    for number, line in enumerate(handle, 1):
                        if line.strip() and not isinstance(_json_or_error(json, line), dict):
                            return f"{name} line {number}: not a JSON object ({_json_or_error(json, line)})"
            except (OSError, UnicodeDecodeError) as exc:
                return f"{name}: cannot be read as UTF-8 JSON lines ({exc})"
    return None


def _json_or_error(json, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at column {exc.colno}"


def _row_id(prefix: str, index: int, prompt: str) -> str:
    # the index keeps ids stable and unique; the hash catches a reordered upstream dataset
    return f"{prefix}-{index}-{hashlib.sha256(prompt.encode()).hexdigest()[:8]}"


def _rows(ref: DataRef, adapter: Adapter, prefix: str, origin: str, limit: int | None) -> list[dict]:
    out = []
    for i, raw in enumerate(load_rows(ref)):
        if limit is not None and len(out) >= limit:
            break
        try:
            prompt, answer, completion = adapter.prompt(raw), adapter.answer(raw), adapter.completion(raw)
        except KeyError as exc:
            raise ValueError(f"dataset {ref.path!r} row {i}: missing field {exc} for adapter "
                             f"{adapter.name!r}") from None
        out.append({"id": _row_id(prefix, i, prompt), "prompt": prompt, "completion": completion or "",
                    "origin": origin, "meta": {"answer": answer}})
    return out


def dataset_task(world: DatasetWorld) -> Task:
    adapter = get_adapter(world.adapter)
    prompt_adapter = get_adapter(world.prompts_adapter) if world.prompts_adapter else adapter

    def test() -> list[dict]:
        return _rows(world.test, adapter, "test", "human", world.test_size)

    def prompts(count: int) -> list[dict]:
        held_out = {r["prompt"] for r in test()}
        rows = [r for r in _rows(world.prompts, prompt_adapter, "prompt", "synthetic", None)
                if r["prompt"] not in held_out]
        return [{"id": r["id"], "prompt": r["prompt"], "meta": r["meta"]} for r in rows[:count]]

    def split() -> tuple[list[dict], list[dict]]:
        """(pool, validation): validation is the human split's last val_size rows, never pooled."""
        rows = _rows(world.human, adapter, "human", "human", None)
        if world.val_size and world.val_size >= len(rows):
            raise ValueError(f"world.val_size={world.val_size} leaves no human rows (dataset "
                             f"{world.human.path!r} has {len(rows)})")
        pool, val = (rows[:-world.val_size], rows[-world.val_size:]) if world.val_size else (rows, [])
        pool = pool[:world.human_pool] if world.human_pool is not None else pool
        missing = [r["id"] for r in pool + val if not r["completion"]]
        if missing:
            raise ValueError(f"adapter {adapter.name!r} gives no human solution for {missing[0]} "
                             f"(dataset {world.human.path!r})")
        return pool, val

    return Task(name=adapter.name, human=lambda: split()[0], prompts=prompts, test=test,
                extract_answer=adapter.extract_answer, val=lambda: split()[1])
