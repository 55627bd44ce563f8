"""Sharding and the append-only, chunked, resumable store of one shard's generations.

Shard ``i`` of ``N`` holds the prompts whose id hashes to ``i`` (sha256 of the id, mod N): a Slurm
array task id is a shard index, and a prompt's shard does not depend on the prompt order.

A shard folder holds:
- ``plan.json``: what this shard generates (config slice, prompt hash, chunk count); a rerun with a
  different plan is refused instead of mixing outputs.
- ``chunk-000123.jsonl``: one header line ``{"chunk": ...}`` then one record per (prompt, sample) of
  ``chunk_size`` consecutive prompts. Written to a temp name, fsynced and renamed: a chunk file is
  whole or absent, so a kill at any moment loses at most the chunk in flight.
- ``index.jsonl``: one line per committed chunk (hash, rows, tokens, wall time), appended after the
  chunk's rename. It is derived data: on open, chunk files missing from it are adopted and a torn last
  line is dropped, so the chunk files alone decide what is done.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from distill.artifacts import atomic_write_bytes, atomic_write_json, atomic_write_text
from distill.generation.errors import GenerationError
from distill.sources import canonical_json

CHUNK = "chunk-{:06d}.jsonl"


_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))  # every digit to "0", the rest to " "
_LONG = b"0" * 19  # 19 digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float


def parse_json_line(line: bytes | str) -> dict:
    """One JSON line (a shard record, a source row) as json.loads reads it. orjson parses the merge's
    millions ~2x faster; a line it would read differently (an integer over 64 bits) or refuses (NaN or
    infinite log-probs) goes to json."""
    data = line.encode() if isinstance(line, str) else line
    if _LONG in data.translate(_DIGITS):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def shard_of(prompt_id: str, num_shards: int) -> int:
    digest = hashlib.sha256(str(prompt_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def shard_prompts(prompts: Sequence[dict], shard: int, num_shards: int) -> list[tuple[int, dict]]:
    """``(position in the full prompt list, row)`` for the prompts of ``shard``, in prompt order."""
    if not 0 <= shard < num_shards:
        raise GenerationError(f"shard {shard} is out of range for {num_shards} shards (0..{num_shards - 1})")
    return [(pos, row) for pos, row in enumerate(prompts) if shard_of(row["id"], num_shards) == shard]


def shard_folder(root: str | Path, shard: int, num_shards: int) -> Path:
    """Where ``run_generation`` keeps shard ``shard`` under its output folder."""
    return Path(root) / "shards" / f"shard-{shard:05d}-of-{num_shards:05d}"


class ShardStore:
    """The chunk files of one shard. Nothing is created on disk before the first ``commit``."""

    def __init__(self, folder: str | Path, plan: dict):
        self.folder, self.plan = Path(folder), plan
        self.index: dict[int, dict] = {}
        if (self.folder / "plan.json").exists():
            self._check_plan()
            self._reconcile()

    @classmethod
    def existing(cls, folder: str | Path) -> ShardStore:
        """Open a shard folder with the plan it holds (for merging)."""
        plan_path = Path(folder) / "plan.json"
        if not plan_path.exists():
            raise GenerationError(f"{folder}: not a generation shard (no plan.json); generate it first")
        return cls(folder, json.loads(plan_path.read_text()))

    def write_plan(self) -> None:
        if not (self.folder / "plan.json").exists():
            atomic_write_json(self.folder / "plan.json", self.plan)

    @property
    def num_chunks(self) -> int:
        return self.plan["num_chunks"]

    def committed(self) -> set[int]:
        return set(self.index)

    def complete(self) -> bool:
        return len(self.index) == self.num_chunks

    def commit(self, chunk: int, records: list[dict], header: dict) -> dict:
        """Write one chunk atomically, then append its line to the index; return that line."""
        self.write_plan()
        lines = [json.dumps({"chunk": chunk, **header}, sort_keys=True)]
        lines += [canonical_json(r) for r in records]  # json.dumps(r, sort_keys=True, ensure_ascii=False)
        data = ("\n".join(lines) + "\n").encode()
        atomic_write_bytes(self.folder / CHUNK.format(chunk), data)
        entry = _entry(chunk, header, len(records), data)
        with open(self.folder / "index.jsonl", "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.index[chunk] = entry
        return entry

    def headers(self) -> list[dict]:
        return [self.index[c] for c in sorted(self.index)]

    def records(self) -> Iterator[dict]:
        """All committed records in chunk order (hence in prompt order within the shard)."""
        for chunk in sorted(self.index):
            with open(self.folder / CHUNK.format(chunk), encoding="utf-8") as handle:
                next(handle)  # the header
                for line in handle:
                    yield parse_json_line(line)

    def located_records(self) -> Iterator[tuple[int, dict]]:
        """``(location, record)`` in chunk order; ``record_at(location)`` reads the record back alone
        (the location packs the chunk number and the line's byte offset)."""
        for chunk in sorted(self.index):
            with open(self.folder / CHUNK.format(chunk), "rb") as handle:
                offset = len(handle.readline())  # the header
                for line in handle:
                    yield chunk << 40 | offset, parse_json_line(line)
                    offset += len(line)

    def record_at(self, location: int) -> dict:
        with open(self.folder / CHUNK.format(location >> 40), "rb") as handle:
            handle.seek(location & (1 << 40) - 1)
            return parse_json_line(handle.readline())

    def _check_plan(self) -> None:
        old = json.loads((self.folder / "plan.json").read_text())
        if old == self.plan:
            return
        key = next(k for k in sorted(set(old) | set(self.plan)) if old.get(k) != self.plan.get(k))
        raise GenerationError(
            f"{self.folder / 'plan.json'}: this shard was started with {key}={old.get(key)!r}, now "
            f"{self.plan.get(key)!r}; use a new output folder or restore the old settings")

    def _reconcile(self) -> None:
        for tmp in self.folder.glob(".chunk-*"):  # temp files of a killed write
            tmp.unlink(missing_ok=True)
        on_disk = {int(p.stem.split("-")[1]): p for p in self.folder.glob("chunk-*.jsonl")}
        index, torn = _read_index(self.folder / "index.jsonl")
        self.index = {c: e for c, e in index.items() if c in on_disk}
        adopted = [c for c in sorted(on_disk) if c not in self.index]
        for chunk in adopted:  # renamed into place but killed before its index line
            data = on_disk[chunk].read_bytes()
            header = json.loads(data.split(b"\n", 1)[0])
            header.pop("chunk")
            self.index[chunk] = _entry(chunk, header, data.count(b"\n") - 1, data)
        if torn or adopted or len(self.index) != len(index):
            text = "".join(json.dumps(self.index[c], sort_keys=True) + "\n" for c in sorted(self.index))
            atomic_write_text(self.folder / "index.jsonl", text)


def _entry(chunk: int, header: dict, rows: int, data: bytes) -> dict:
    return {"chunk": chunk, "rows": rows, "sha256": hashlib.sha256(data).hexdigest(), **header}


def _read_index(path: Path) -> tuple[dict[int, dict], bool]:
    """Index entries by chunk, and whether a torn (partly written) line was dropped."""
    if not path.exists():
        return {}, False
    entries, torn = {}, False
    for line in path.read_text().splitlines(keepends=True):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            torn = True
            continue
        if not line.endswith("\n"):
            torn = True
        entries[entry["chunk"]] = entry
    return entries, torn
