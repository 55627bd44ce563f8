"""Token ids of a source, tokenized once: flat arrays a mix of any size indexes without copying rows.

A ``TokenTable`` holds one source's rows tokenized the one way (``data.tokenize``): row ``r``'s
prompt ids are ``ids[offsets[2r]:offsets[2r+1]]`` and its completion ids
``ids[offsets[2r+1]:offsets[2r+2]]`` (uint32 ids, int64 offsets), plus, for sources with
first-error marks, the completion tokens before the mark (``learn``, -1: no mark). Nothing is cut
to ``seq_len`` here: the cut belongs to the training run, so one table serves every run.

On disk (``cached_table``) a table is a folder of raw arrays read back as memory maps, so a
process holds only the pages it touches. The folder's name is a hash of the source's Arrow files
and of the tokenizer, so every mix and every run that reads the same source with the same
tokenizer reuses it; it is written to a temp folder and renamed, so a reader never sees half of one
and two writers racing both end with the same folder.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEARN_COLUMN = "learn_chars"  # first_error rows: characters before the first wrong step; -1: no mark
FORMAT = 1  # bump when the layout or the tokenization rule changes: old caches are then not found
BATCH = 4096  # rows per tokenizer call: large enough for the fast tokenizer's threads, small in memory
IDS, OFFSETS, LEARN, INFO = "ids.u32", "offsets.i64", "learn.i32", "table.json"


def tokenize(tokenizer, prompts: list[str],
             completions: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """The one tokenization of examples: prompts with the tokenizer's own special tokens (e.g. a
    BOS), completions without; an example is both then EOS (``example_length``)."""
    return tokenizer(prompts)["input_ids"], tokenizer(completions, add_special_tokens=False)["input_ids"]


def example_length(prompt: list[int], completion: list[int]) -> int:
    """Tokens of one example before any cut to ``seq_len``: prompt, completion and EOS."""
    return len(prompt) + len(completion) + 1


def learnable_tokens(tokenizer, completions: list[str], cuts: list[int]) -> list[int | None]:
    """Per example, the completion tokens that end at or before character ``cut`` (negative: no mark).

    Offsets of the completion's own tokenization are used, so the count matches the tokens trained on
    (tokenizing the prefix alone could merge differently at the cut).
    """
    enc = tokenizer(completions, add_special_tokens=False, return_offsets_mapping=True)
    out: list[int | None] = []
    for offsets, cut in zip(enc["offset_mapping"], cuts):
        out.append(None if cut is None or cut < 0 else sum(1 for _, end in offsets if end <= cut))
    return out


@dataclass(frozen=True)
class TokenTable:
    """One source's rows as token ids (see the module docstring for the layout)."""

    ids: np.ndarray  # uint32
    offsets: np.ndarray  # int64, 2 * rows + 1
    learn: np.ndarray | None = None  # int32 per row; -1: no first-error mark

    def __len__(self) -> int:
        return (len(self.offsets) - 1) // 2

    @property
    def prompt_lengths(self) -> np.ndarray:
        return self.offsets[1::2] - self.offsets[0:-1:2]

    @property
    def example_lengths(self) -> np.ndarray:
        """Tokens of each row as an example before any cut: prompt, completion and EOS."""
        return self.offsets[2::2] - self.offsets[0:-1:2] + 1

    def example(self, row: int, eos: int, seq_len: int) -> np.ndarray:
        """Row ``row`` as training ids (int64): prompt + completion + EOS, cut to ``seq_len``."""
        start, stop = int(self.offsets[2 * row]), int(self.offsets[2 * row + 2])
        out = np.empty(stop - start + 1, dtype=np.int64)
        out[:-1] = self.ids[start:stop]
        out[-1] = eos
        return out[:seq_len]


def tokenizer_key(tokenizer) -> str:
    """What decides the ids of a text: the tokenizer's own definition and its special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = {"class": type(tokenizer).__name__, "backend": backend.to_str() if backend is not None else "",
            "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
            "eos": tokenizer.eos_token_id, "vocab": len(tokenizer)}
    if backend is None:  # a slow tokenizer: its vocabulary is its definition
        spec["vocab_items"] = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def folder_key(folder: Path) -> str:
    """sha256 of a ``save_to_disk`` folder's Arrow files (names and bytes): the source's content."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.arrow")):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def batches(data, learn: str | None, size: int = BATCH) -> Iterator[tuple[list, list, list | None]]:
    """(prompts, completions, cuts) of a ``datasets.Dataset`` in row order, ``size`` rows at a time.

    ``learn``: None (no marks), ``"meta"`` (a source: ``learn_chars`` inside the JSON meta) or the
    name of an int column (a training set written with one).
    """
    columns = ["prompt", "completion"] + ([learn] if learn else [])
    for batch in data.select_columns(columns).iter(batch_size=size):
        cuts = None
        if learn == "meta":
            cuts = [int(json.loads(m).get("learn_chars", -1)) if m else -1 for m in batch["meta"]]
        elif learn:
            cuts = [-1 if c is None else int(c) for c in batch[learn]]
        yield batch["prompt"], batch["completion"], cuts


def write_table(tokenizer, rows: Iterator[tuple[list, list, list | None]], folder: Path,
                total: int | None = None, desc: str = "tokenize") -> None:
    """Tokenize ``rows`` batch by batch, appending to the raw arrays in ``folder`` (streaming)."""
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    n_rows = n_ids = 0
    has_learn = False
    bar = tqdm(total=total, unit="row", desc=desc, disable=None)
    with open(folder / IDS, "wb") as ids, open(folder / OFFSETS, "wb") as offs, open(folder / LEARN,
                                                                                     "wb") as lrn:
        offs.write(np.zeros(1, dtype=np.int64).tobytes())
        for prompts, completions, cuts in rows:
            p_ids, c_ids = tokenize(tokenizer, list(prompts), list(completions))
            bounds = np.empty(2 * len(p_ids), dtype=np.int64)
            bounds[0::2] = [len(p) for p in p_ids]
            bounds[1::2] = [len(c) for c in c_ids]
            flat = itertools.chain.from_iterable(itertools.chain.from_iterable(zip(p_ids, c_ids)))
            ids.write(np.fromiter(flat, dtype=np.uint32, count=int(bounds.sum())).tobytes())
            offs.write((n_ids + np.cumsum(bounds)).tobytes())
            n_ids += int(bounds.sum())
            marks = [-1] * len(p_ids)
            if cuts is not None and any(c >= 0 for c in cuts):
                has_learn = True
                marks = [-1 if m is None else m for m in learnable_tokens(tokenizer, list(completions), cuts)]
            lrn.write(np.asarray(marks, dtype=np.int32).tobytes())
            n_rows += len(p_ids)
            bar.update(len(p_ids))
    bar.close()
    if not has_learn:
        (folder / LEARN).unlink()
    info = {"format": FORMAT, "rows": n_rows, "ids": n_ids, "learn": has_learn}
    (folder / INFO).write_text(json.dumps(info, sort_keys=True) + "\n")


def open_table(folder: Path) -> TokenTable:
    """A written table as memory maps (pages are read when touched)."""
    info = json.loads((folder / INFO).read_text())

    def read(name: str, dtype, count: int) -> np.ndarray:
        if count == 0:  # np.memmap refuses an empty file
            return np.zeros(0, dtype=dtype)
        return np.memmap(folder / name, dtype=dtype, mode="r", shape=(count,))

    learn = read(LEARN, np.int32, info["rows"]) if info["learn"] else None
    return TokenTable(read(IDS, np.uint32, info["ids"]), read(OFFSETS, np.int64, 2 * info["rows"] + 1), learn)


def in_memory(tokenizer, data, learn: str | None) -> TokenTable:
    """A table of a small training folder, tokenized in a temp folder and read into memory."""
    with tempfile.TemporaryDirectory(prefix="distill-tokens-") as tmp:
        write_table(tokenizer, batches(data, learn), Path(tmp), total=len(data))
        table = open_table(Path(tmp))
        return TokenTable(np.array(table.ids), np.array(table.offsets),
                          None if table.learn is None else np.array(table.learn))


def cached_table(source: Path, tokenizer, cache: Path) -> tuple[TokenTable, Path]:
    """The token table of a source folder (``source/data``), from ``cache`` or tokenized into it once."""
    from distill.sources import load_source

    data_dir = source / "data"
    key = hashlib.sha256(f"{FORMAT}:{folder_key(data_dir)}:{tokenizer_key(tokenizer)}".encode()).hexdigest()
    folder = cache / key[:32]
    if not (folder / INFO).exists():
        data = load_source(source)
        learn = "meta" if "meta" in data.column_names else None
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache))
        try:
            write_table(tokenizer, batches(data, learn), tmp, total=len(data), desc=f"tokenize {source.name}")
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, folder)  # atomic; fails if another process published it first
            except OSError:
                if not (folder / INFO).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return open_table(folder), folder
