"""A real task from datasets: human pool, teacher prompt pool and test split, read through adapters.

Each ``DataRef`` is a hub dataset (``path: openai/gsm8k``, ``name: main``) or local files
(``path: json``, ``data_files: ...``); both go through ``datasets.load_dataset``, so the code path
that reads the hub is the one tests exercise with local files in the hub's schema.
"""
from __future__ import annotations

import hashlib

from distill.recipe.schema import DataRef, DatasetWorld
from distill.world.adapters import Adapter, get_adapter
from distill.world.files import LOCAL_FORMATS, DataFileError, check_fields, read_rows, split_files
from distill.world.task import Task


def load_rows(ref: DataRef, key: str = "world") -> list[tuple[str, int, dict]]:
    """(file, row number, row) per row: local files read row by row (``distill.world.files``), a hub
    dataset through ``datasets`` (named by its path, rows counted from 1)."""
    if ref.path in LOCAL_FORMATS and ref.data_files is not None and not _remote(ref.data_files):
        return list(read_rows(ref.path, split_files(ref.data_files, ref.split, key)))
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    kwargs = {"data_files": ref.data_files} if ref.data_files is not None else {}
    try:
        data = load_dataset(ref.path, ref.name, split=ref.split, revision=ref.revision, **kwargs)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"dataset {ref.path!r} (data_files={ref.data_files!r}): {exc}") from None
    except DatasetGenerationError as exc:  # "An error occurred while generating the dataset": say where
        raise ValueError(f"dataset {ref.path!r} (data_files={ref.data_files!r}): "
                         f"{exc.__cause__ or exc}") from exc
    where = f"dataset {ref.path!r}" + (f" ({ref.name})" if ref.name else "") + f" split {ref.split!r}"
    return [(where, i, row) for i, row in enumerate(data, 1)]


def _remote(data_files) -> bool:
    files = data_files.values() if isinstance(data_files, dict) else [data_files]
    flat = [f for v in files for f in ([v] if isinstance(v, str) else v)]
    return any("://" in f for f in flat)


def _row_id(prefix: str, index: int, prompt: str) -> str:
    # the index keeps ids stable and unique; the hash catches a reordered upstream dataset
    return f"{prefix}-{index}-{hashlib.sha256(prompt.encode()).hexdigest()[:8]}"


def _rows(ref: DataRef, adapter: Adapter, prefix: str, origin: str, limit: int | None,
          key: str = "world") -> list[dict]:
    out = []
    for i, (name, number, raw) in enumerate(load_rows(ref, key)):
        if limit is not None and len(out) >= limit:
            break
        check_fields(raw, adapter.fields, name, number)  # before the adapter casts or drops anything
        try:
            prompt, answer, completion = adapter.prompt(raw), adapter.answer(raw), adapter.completion(raw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataFileError(f"{name} row {number}: {type(exc).__name__} {exc} reading it with adapter "
                                f"{adapter.name!r}") from None
        out.append({"id": _row_id(prefix, i, prompt), "prompt": prompt, "completion": completion or "",
                    "origin": origin, "meta": {"answer": answer}})
    return out


def _files(ref: DataRef) -> str:
    return f"{ref.path} {ref.data_files}" if ref.data_files is not None else f"dataset {ref.path!r}"


def dataset_task(world: DatasetWorld) -> Task:
    adapter = get_adapter(world.adapter)
    prompt_adapter = get_adapter(world.prompts_adapter) if world.prompts_adapter else adapter

    def test() -> list[dict]:
        rows = _rows(world.test, adapter, "test", "human", world.test_size, "world.test")
        # a score over fewer items than the recipe names (or none) is not the figure it asked for
        if not rows or (world.test_size is not None and len(rows) < world.test_size):
            asked = f"world.test_size={world.test_size}" if world.test_size is not None else "world.test"
            raise DataFileError(f"{asked}: the test data ({_files(world.test)}) holds {len(rows)} rows"
                                + ("; lower test_size or add data" if rows else "; nothing to evaluate on"))
        return rows

    def prompts(count: int) -> list[dict]:
        held_out = {r["prompt"] for r in test()}
        rows = [r for r in _rows(world.prompts, prompt_adapter, "prompt", "synthetic", None, "world.prompts")
                if r["prompt"] not in held_out]
        return [{"id": r["id"], "prompt": r["prompt"], "meta": r["meta"]} for r in rows[:count]]

    def split() -> tuple[list[dict], list[dict]]:
        """(pool, validation): validation is the human split's last val_size rows, never pooled."""
        rows = _rows(world.human, adapter, "human", "human", None, "world.human")
        if world.val_size and world.val_size >= len(rows):
            raise ValueError(f"world.val_size={world.val_size} leaves no human rows (dataset "
                             f"{world.human.path!r} has {len(rows)})")
        pool, val = (rows[:-world.val_size], rows[-world.val_size:]) if world.val_size else (rows, [])
        # the report would state a wall not there
        if world.human_pool is not None and len(pool) < world.human_pool:
            raise DataFileError(f"world.human_pool={world.human_pool}: the human data "
                                f"({_files(world.human)}) "
                                f"holds {len(pool)} rows"
                                + (f" after world.val_size={world.val_size}" if world.val_size
                                                             else "") + "; lower human_pool or add data")
        pool = pool[:world.human_pool] if world.human_pool is not None else pool
        missing = [r["id"] for r in pool + val if not r["completion"]]
        if missing:
            raise ValueError(f"adapter {adapter.name!r} gives no human solution for {missing[0]} "
                             f"(dataset {world.human.path!r})")
        return pool, val

    return Task(name=adapter.name, human=lambda: split()[0], prompts=prompts, test=test,
                extract_answer=adapter.extract_answer, val=lambda: split()[1])
