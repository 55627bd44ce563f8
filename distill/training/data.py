"""The training data: examples as index arrays into token tables, never as rows or lists of ids.

An example's tokens are ``tokenizer(prompt)`` (the tokenizer's own special tokens, e.g. a BOS) then
``tokenizer(completion, add_special_tokens=False)`` then EOS, cut to ``seq_len`` (``tokens.py``).
The loss covers the completion and its EOS. Every process reads the same data the same way, so no
data is sent between ranks.

Two kinds of training folder:
- a mix folder (``write_mix``, what a train step writes): ``mix.json`` names each source's folder
  and its token table (``tokens.cached_table``), and ``.npy`` arrays give, per example in training
  order, its table, its row there and its loss weight. A 1M-example mix is about 18 MB of indices;
  the token ids stay in the tables' memory maps and are read when a batch is collated.
- a ``datasets`` folder of rows (prompt, completion and optionally source, weight, learn_chars and
  the stored-KD columns): tokenized into an in-memory table when opened.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, load_from_disk

from distill.artifacts import atomic_dir
from distill.sources import TOPK_COLUMNS
from distill.training.packing import n_learnable
from distill.training.tokens import LEARN_COLUMN, TokenTable, in_memory, open_table

MIX_INFO = "mix.json"
MIX_FORMAT = "distill-mix/1"


class Examples(Sequence):
    """Example ``i``'s training ids (int64 array), read from its table when asked for."""

    def __init__(self, tables: Sequence[TokenTable], table: np.ndarray, row: np.ndarray, eos: int,
                 seq_len: int):
        self.tables, self.table, self.row, self.eos, self.seq_len = tables, table, row, eos, seq_len

    def __len__(self) -> int:
        return len(self.row)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.tables[self.table[i]].example(int(self.row[i]), self.eos, self.seq_len)


class Column(Sequence):
    """Example ``i``'s value of an Arrow column of its source (None where the source lacks it)."""

    def __init__(self, columns: Sequence, table: np.ndarray, row: np.ndarray):
        self.columns, self.table, self.row = columns, table, row

    def __len__(self) -> int:
        return len(self.row)

    def __getitem__(self, i: int):
        column = self.columns[self.table[i]]
        return None if column is None else column[int(self.row[i])].as_py()


@dataclass(frozen=True)
class Corpus:
    """Tokenized examples, column-wise (index i is one example, in training order)."""

    ids: Examples
    n_prompt: np.ndarray  # prompt tokens (before any cut)
    lengths: np.ndarray  # tokens after the cut to seq_len
    weights: np.ndarray  # float64 loss weight
    source_index: np.ndarray
    sources: tuple[str, ...]
    truncated: int
    topk: tuple[Column, Column] | None  # (ids, logprobs) per example, per completion token
    fingerprint: str = ""  # the data's own content fingerprint
    # first_error rows: completion tokens before the first wrong step (EOS excluded); -1: all learnable
    learn: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def loss_weight(self, rows: list[list[int]]) -> float:
        """Sum of per-token loss weights over rows: the normaliser of a global batch's loss."""
        # summed one example at a time, in row order, as floats: the same float as always
        return sum(float(self.weights[i]) * n_learnable(int(self.lengths[i]), int(self.n_prompt[i]),
                                                        self._learn(i))
                   for r in rows for i in r)

    def _learn(self, i: int) -> int | None:
        return None if self.learn is None or self.learn[i] < 0 else int(self.learn[i])

    def tokens_by_source(self, rows: list[list[int]]) -> dict[str, int]:
        flat = np.fromiter((i for r in rows for i in r), dtype=np.int64)
        counts = np.bincount(self.source_index[flat], weights=self.lengths[flat], minlength=len(self.sources))
        return {s: int(c) for s, c in zip(self.sources, counts)}


def open_dataset(path: str | Path) -> Dataset:
    """A ``save_to_disk`` folder, or a source folder that holds one under ``data/``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training data {str(path)!r} does not exist")
    folder = path / "data" if (path / "data" / "dataset_info.json").exists() else path
    data = load_from_disk(str(folder))
    missing = {"prompt", "completion"} - set(data.column_names)
    if missing:
        raise ValueError(f"training data {str(path)!r} misses columns {sorted(missing)}")
    return data


def write_mix(out: Path, tables: Sequence[dict], table: np.ndarray, row: np.ndarray, weight: np.ndarray,
              learn: bool, content_hash: str) -> Path:
    """A mix folder, atomically. ``tables``: ``{"name", "source", "tokens"}`` per table (sources by
    name, in ``table``'s numbering); ``learn``: first-error marks apply (the mix has such rows)."""
    info = {"format": MIX_FORMAT, "tables": list(tables), "examples": len(row), "learn": learn,
            "content_hash": content_hash}
    with atomic_dir(out) as tmp:
        np.save(tmp / "table.npy", np.asarray(table, dtype=np.int16))
        np.save(tmp / "row.npy", np.asarray(row, dtype=np.int64))
        np.save(tmp / "weight.npy", np.asarray(weight, dtype=np.float64))
        (tmp / MIX_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out


def load_corpus(path: str | Path, tokenizer, seq_len: int, want_topk: bool = False) -> Corpus:
    path = Path(path)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(f"tokenizer of {tokenizer.name_or_path!r} has no EOS token")
    if (path / MIX_INFO).exists():
        return _open_mix(path, eos, seq_len, want_topk)
    data = open_dataset(path)
    n = len(data)
    if n == 0:
        raise ValueError(f"training data {str(path)!r} is empty")
    if want_topk and not set(TOPK_COLUMNS) <= set(data.column_names):
        raise ValueError(f"training data {str(path)!r}: kd.source=stored needs columns {list(TOPK_COLUMNS)}")
    marks = LEARN_COLUMN in data.column_names
    table = in_memory(tokenizer, data, LEARN_COLUMN if marks else None)
    names = list(data["source"]) if "source" in data.column_names else ["data"] * n
    sources = tuple(sorted(set(names)))
    index = {s: i for i, s in enumerate(sources)}
    weights = np.asarray(data["weight"] if "weight" in data.column_names else [1.0] * n, dtype=np.float64)
    bad = weights[~(weights >= 0.0)]
    if len(bad):
        raise ValueError(f"training data {str(path)!r}: weight {float(bad[0])!r} is not a "
                         "non-negative number")
    rows = np.arange(n, dtype=np.int64)
    topk = _topk([data] if want_topk else None, np.zeros(n, dtype=np.int16), rows)
    return _corpus([table], np.zeros(n, dtype=np.int16), rows, weights,
                   np.asarray([index[s] for s in names], dtype=np.int64), sources, eos, seq_len, topk,
                   getattr(data, "_fingerprint", ""), marks)


def _open_mix(path: Path, eos: int, seq_len: int, want_topk: bool) -> Corpus:
    info = json.loads((path / MIX_INFO).read_text())
    if info.get("format") != MIX_FORMAT:
        raise ValueError(f"{path / MIX_INFO}: format {info.get('format')!r} is not {MIX_FORMAT!r}")
    tables = []
    for t in info["tables"]:
        if not (Path(t["tokens"]) / "table.json").exists():
            raise FileNotFoundError(f"{path / MIX_INFO}: token table {t['tokens']!r} of {t['name']!r} "
                                    "is missing")
        tables.append(open_table(Path(t["tokens"])))
    table, row = np.load(path / "table.npy", mmap_mode="r"), np.load(path / "row.npy", mmap_mode="r")
    if len(row) == 0:
        raise ValueError(f"training data {str(path)!r} is empty")
    topk = None
    if want_topk:
        from distill.sources import load_source

        data = [load_source(t["source"]) for t in info["tables"]]
        if not any(set(TOPK_COLUMNS) <= set(d.column_names) for d in data):
            raise ValueError(f"training data {str(path)!r}: kd.source=stored needs columns "
                             f"{list(TOPK_COLUMNS)}")
        topk = _topk(data, table, row)
    sources = tuple(t["name"] for t in info["tables"])
    return _corpus(tables, table, row, np.load(path / "weight.npy", mmap_mode="r"),
                   np.asarray(table, dtype=np.int64),
                   sources, eos, seq_len, topk, info["content_hash"], info["learn"])


def _topk(data: list[Dataset] | None, table: np.ndarray, row: np.ndarray) -> tuple[Column, Column] | None:
    if data is None:
        return None
    columns = [[d.data.column(c) if c in d.column_names else None for d in data] for c in TOPK_COLUMNS]
    return Column(columns[0], table, row), Column(columns[1], table, row)


def _corpus(tables: list[TokenTable], table: np.ndarray, row: np.ndarray, weights: np.ndarray,
            source_index: np.ndarray, sources: tuple[str, ...], eos: int, seq_len: int,
            topk: tuple[Column, Column] | None, fingerprint: str, marks: bool) -> Corpus:
    """Per-example arrays gathered from the tables (one vectorised pass per table)."""
    full = np.empty(len(row), dtype=np.int64)
    n_prompt = np.empty(len(row), dtype=np.int64)
    learn = np.full(len(row), -1, dtype=np.int64) if marks else None
    for t, tab in enumerate(tables):
        mask = table == t
        rows = row[mask]
        full[mask] = tab.example_lengths[rows]
        n_prompt[mask] = tab.prompt_lengths[rows]
        if learn is not None and tab.learn is not None:
            learn[mask] = tab.learn[rows]
    lengths = np.minimum(full, seq_len)
    return Corpus(Examples(tables, table, row, eos, seq_len), n_prompt, lengths, weights, source_index,
                  sources, int((full > seq_len).sum()), topk, fingerprint, learn)
