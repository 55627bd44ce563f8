"""Sources: datasets of ``{id, prompt, completion, origin, meta}`` rows, stored with ``datasets``.

A source folder is what ``datasets.load_from_disk`` opens and what TRL's ``SFTTrainer`` trains on
unchanged (prompt/completion columns). ``meta`` is a JSON string so that rows of different origins
share one Arrow schema.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from datasets import Dataset, Features, Value, load_from_disk

from distill.artifacts import atomic_dir

ORIGINS = ("human", "synthetic", "edited", "first_error", "picked")
FEATURES = Features({
    "id": Value("string"), "prompt": Value("string"), "completion": Value("string"),
    "origin": Value("string"), "meta": Value("string"),
})


def normalise(row: dict) -> dict:
    missing = {"id", "prompt", "completion", "origin"} - set(row)
    if missing:
        raise ValueError(f"source row {row.get('id', '?')!r} misses keys {sorted(missing)}")
    if row["origin"] not in ORIGINS:
        raise ValueError(f"source row {row['id']!r}: origin {row['origin']!r} not in {ORIGINS}")
    meta = row.get("meta") or {}
    return {
        "id": str(row["id"]), "prompt": row["prompt"], "completion": row["completion"],
        "origin": row["origin"], "meta": meta if isinstance(meta, str) else json.dumps(meta, sort_keys=True),
    }


def rows_hash(rows: Iterable[dict]) -> str:
    """Order-sensitive content hash of a source's rows."""
    digest = hashlib.sha256()
    for row in rows:
        row = normalise(row)
        digest.update(json.dumps([row[k] for k in FEATURES], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def save_source(rows: list[dict], folder: str | Path) -> Path:
    """Write a source atomically (temp folder, then rename); return the folder."""
    rows = [normalise(r) for r in rows]
    columns = {name: [r[name] for r in rows] for name in FEATURES}
    with atomic_dir(folder) as tmp:
        # num_shards=1: with zero rows datasets otherwise writes no Arrow file and cannot load it back
        Dataset.from_dict(columns, features=FEATURES).save_to_disk(str(tmp / "data"), num_shards=1)
    return Path(folder)


def load_source(folder: str | Path) -> Dataset:
    path = Path(folder) / "data"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a source folder (no data/ inside)")
    return load_from_disk(str(path))


def meta_of(row: dict) -> dict:
    return json.loads(row["meta"]) if row.get("meta") else {}
