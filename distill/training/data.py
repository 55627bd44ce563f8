"""The training data: a ``datasets`` folder read once and tokenized into examples.

An example's tokens are ``tokenizer(prompt)`` (the tokenizer's own special tokens, e.g. a BOS) then
``tokenizer(completion, add_special_tokens=False)`` then EOS, cut to ``seq_len``. The loss covers
the completion and its EOS. Every process tokenizes the same folder the same way, so no data
is sent between ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, load_from_disk

from distill.sources import TOPK_COLUMNS
from distill.training.packing import build_example, n_learnable

LEARN_COLUMN = "learn_chars"  # first_error rows: characters before the first wrong step; -1: no mark


@dataclass(frozen=True)
class Corpus:
    """Tokenized examples, column-wise (index i is one example)."""

    ids: list[list[int]]
    n_prompt: list[int]
    weights: list[float]
    source_index: list[int]
    sources: tuple[str, ...]
    truncated: int
    topk: tuple[list, list] | None  # (ids, logprobs) per example, per completion token
    fingerprint: str = ""  # the dataset's own content fingerprint
    # first_error rows: completion tokens before the first wrong step (EOS excluded); None: all learnable
    learn: list[int | None] | None = None

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]

    def loss_weight(self, rows: list[list[int]]) -> float:
        """Sum of per-token loss weights over rows: the normaliser of a global batch's loss."""
        return sum(self.weights[i] * n_learnable(len(self.ids[i]), self.n_prompt[i], self._learn(i))
                   for r in rows for i in r)

    def _learn(self, i: int) -> int | None:
        return None if self.learn is None else self.learn[i]

    def tokens_by_source(self, rows: list[list[int]]) -> dict[str, int]:
        out = dict.fromkeys(self.sources, 0)
        for row in rows:
            for i in row:
                out[self.sources[self.source_index[i]]] += len(self.ids[i])
        return out


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


def tokenize(tokenizer, prompts: list[str], completions: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """The one tokenization of examples: prompts with the tokenizer's own special tokens (e.g. a
    BOS), completions without; an example is both then EOS (``example_length``)."""
    return tokenizer(prompts)["input_ids"], tokenizer(completions, add_special_tokens=False)["input_ids"]


def example_length(prompt: list[int], completion: list[int]) -> int:
    """Tokens of one example before any cut to ``seq_len``: prompt, completion and EOS."""
    return len(prompt) + len(completion) + 1


def load_corpus(path: str | Path, tokenizer, seq_len: int, want_topk: bool = False) -> Corpus:
    data = open_dataset(path)
    n = len(data)
    if n == 0:
        raise ValueError(f"training data {str(path)!r} is empty")
    if want_topk and not set(TOPK_COLUMNS) <= set(data.column_names):
        raise ValueError(f"training data {str(path)!r}: kd.source=stored needs columns {list(TOPK_COLUMNS)}")
    prompts, completions = tokenize(tokenizer, list(data["prompt"]), list(data["completion"]))
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(f"tokenizer of {tokenizer.name_or_path!r} has no EOS token")
    ids, n_prompt, truncated = [], [], 0
    for p, c in zip(prompts, completions):
        example, n_p, cut = build_example(p, c, eos, seq_len)
        ids.append(example)
        n_prompt.append(n_p)
        truncated += cut
    names = list(data["source"]) if "source" in data.column_names else ["data"] * n
    sources = tuple(sorted(set(names)))
    index = {s: i for i, s in enumerate(sources)}
    weights = [float(w) for w in data["weight"]] if "weight" in data.column_names else [1.0] * n
    bad = [w for w in weights if not w >= 0.0]
    if bad:
        raise ValueError(f"training data {str(path)!r}: weight {bad[0]!r} is not a non-negative number")
    topk = (list(data[TOPK_COLUMNS[0]]), list(data[TOPK_COLUMNS[1]])) if want_topk else None
    learn = learnable_tokens(tokenizer, list(data["completion"]), list(data[LEARN_COLUMN])) \
        if LEARN_COLUMN in data.column_names else None
    return Corpus(ids, n_prompt, weights, [index[s] for s in names], sources, truncated, topk,
                  getattr(data, "_fingerprint", ""), learn)


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
