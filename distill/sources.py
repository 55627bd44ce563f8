"""Sources: datasets of ``{id, prompt, completion, origin, meta}`` rows, stored with ``datasets``.

A source folder is what ``datasets.load_from_disk`` opens and what TRL's ``SFTTrainer`` trains on
unchanged (prompt/completion columns). ``meta`` is a JSON string so that rows of different origins
share one Arrow schema.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from distill.artifacts import atomic_dir
from distill.registry import HUMAN_PRIMITIVES

if TYPE_CHECKING:
    from datasets import Dataset, Features

ORIGINS = ("human", "synthetic", *HUMAN_PRIMITIVES.names)
COLUMNS = ("id", "prompt", "completion", "origin", "meta")  # all strings (``FEATURES``)
# Knowledge distillation: a synthetic source generated with ``logprobs_topk`` > 0 also holds the
# teacher's tokens and, per completion token, its top-k token ids and log-probs; training reads the
# top-k columns (``kd.source=stored``).
KD_COLUMNS = ("teacher_token_ids", "teacher_topk_ids", "teacher_topk_logprobs")
TOPK_COLUMNS = KD_COLUMNS[1:]


@cache
def _features() -> Features:
    from datasets import Features, Value

    return Features({name: Value("string") for name in COLUMNS})


def __getattr__(name: str):
    # ``FEATURES`` is built on first use: importing datasets costs ~1.5 s, which every dedup array
    # task would pay for ``normalise`` alone
    if name == "FEATURES":
        return _features()
    raise AttributeError(f"module 'distill.sources' has no attribute {name!r}")


def _sorted_json(ensure_ascii: bool) -> Callable[[object], str]:
    """``json.dumps(obj, sort_keys=True, ensure_ascii=...)`` as one C encoder built once: json.dumps
    builds an encoder object per call, a third of the cost for the small objects the merge writes
    millions of (no circular-reference check: rows are trees)."""
    string = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    if json.encoder.c_make_encoder is None:  # a Python without the C accelerator
        return json.JSONEncoder(sort_keys=True, ensure_ascii=ensure_ascii).encode
    encode = json.encoder.c_make_encoder(None, json.JSONEncoder().default, string, None, ": ", ", ", True,
                                         False, True)
    return lambda obj: "".join(encode(obj, 0))


_META = _sorted_json(ensure_ascii=True)  # the meta column's rule
canonical_json = _sorted_json(ensure_ascii=False)  # a source line's rule (``content_hash``)
_STRING = json.encoder.encode_basestring  # json.dumps's string encoder under ensure_ascii=False (C)
# completion, id, meta, origin, prompt
_LINE = "{" + ", ".join(f'"{name}": %s' for name in sorted(COLUMNS)) + "}"


def normalise(row: dict) -> dict:
    missing = {"id", "prompt", "completion", "origin"} - set(row)
    if missing:
        raise ValueError(f"source row {row.get('id', '?')!r} misses keys {sorted(missing)}")
    if row["origin"] not in ORIGINS:
        raise ValueError(f"source row {row['id']!r}: origin {row['origin']!r} not in {ORIGINS}")
    meta = row.get("meta") or {}
    return {
        "id": str(row["id"]), "prompt": row["prompt"], "completion": row["completion"],
        "origin": row["origin"], "meta": meta if isinstance(meta, str) else _META(meta),
    }


def row_line(row: dict) -> str:
    """``json.dumps(normalise(row), sort_keys=True, ensure_ascii=False)``: the line ``content_hash``
    hashes for the row, built directly from its five strings (the streaming merge writes millions)."""
    normal = normalise(row)
    completion, prompt = normal["completion"], normal["prompt"]
    if type(completion) is not str or type(prompt) is not str:  # json's own rules for other values
        return canonical_json(normal)
    return _LINE % (_STRING(completion), _STRING(normal["id"]), _STRING(normal["meta"]),
                    _STRING(normal["origin"]),
                    _STRING(prompt))


def content_hash(dataset: Dataset) -> str:
    """Order-sensitive sha256 of every column of every row of a source (a ``datasets.Dataset`` as
    written, read back from disk), so anyone can recompute it."""
    digest = hashlib.sha256()
    digest.update(json.dumps(sorted(dataset.column_names)).encode())
    for row in dataset:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def save_source(rows: list[dict], folder: str | Path) -> Path:
    """Write a source atomically (temp folder, then rename); return the folder."""
    from datasets import Dataset

    features = _features()
    rows = [normalise(r) for r in rows]
    columns = {name: [r[name] for r in rows] for name in features}
    with atomic_dir(folder) as tmp:
        # num_shards=1: with zero rows datasets otherwise writes no Arrow file and cannot load it back
        Dataset.from_dict(columns, features=features).save_to_disk(str(tmp / "data"), num_shards=1)
    return Path(folder)


def load_source(folder: str | Path) -> Dataset:
    from datasets import load_from_disk

    path = Path(folder) / "data"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a source folder (no data/ inside)")
    return load_from_disk(str(path))


def meta_of(row: dict) -> dict:
    return json.loads(row["meta"]) if row.get("meta") else {}
