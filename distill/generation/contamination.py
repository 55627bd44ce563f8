"""Decontamination at scale: the eval prompts' word n-grams as one shared index, checked a batch at a time.

Same rule as ``filters.decontaminate`` (a row is contaminated when its prompt or its completion holds a
word n-gram of an eval prompt, or a whole eval prompt shorter than n words; words are ``filters.words``:
``\\w+`` runs and single punctuation marks, lowercased). The index is a JSON file written once and read
by every filter task. A batch of ASCII texts is tokenised and hashed in numpy (a hash of each word's
first and last bytes and length, then a polynomial hash of each window of words) and looked up in the sorted
gram hashes; a hit is confirmed with
the exact word tuples, and a non-ASCII text takes the exact path directly (``\\w`` is Unicode-aware).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import orjson

from distill.generation.filters import eval_ngrams, ngrams, words

_Q = np.uint64(0x9E3779B97F4A7C15)
_MASK = np.array([(1 << 8 * k) - 1 for k in range(9)], np.uint64)  # the low k bytes of a uint64


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(29))


_BITMAP = 1 << 22
_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _powers(base: np.uint64, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(base**k, base**-k) mod 2**64 for k < n, cached and grown by doubling (cumprod is slow)."""
    have = _POWERS.get(int(base))
    if have is None or len(have[0]) < n:
        size = max(n, 2 * len(have[0]) if have else 1 << 16)
        up = np.full(size, base, np.uint64)
        down = np.full(size, np.uint64(pow(int(base), -1, 1 << 64)), np.uint64)
        up[0] = down[0] = 1
        have = _POWERS[int(base)] = (np.cumprod(up, dtype=np.uint64), np.cumprod(down, dtype=np.uint64))
    return have[0][:n], have[1][:n]


def _token_hashes(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(start byte, hash) of every token of an ASCII blob: a word's bytes, or one punctuation mark.

    A token's hash reads its first and last 8 bytes and its length (one gather per token, not work per
    byte): two long words that agree on all three collide, which only sends a row to the exact check."""
    b = np.frombuffer(blob, np.uint8)
    lower = b | np.uint8(32)  # comparisons, not table look-ups: numpy vectorises them
    word = ((lower >= 97) & (lower <= 122)) | ((b >= 48) & (b <= 57)) | (b == 95)
    space = (b == 32) | ((b >= 9) & (b <= 13)) | ((b >= 28) & (b <= 31))
    single = ~word & ~space  # a punctuation mark: a token of its own
    starts = np.flatnonzero((word & ~np.concatenate(([False], word[:-1]))) | single)
    ends = np.flatnonzero((word & ~np.concatenate((word[1:], [False]))) | single) + 1  # k-th token's end
    at = np.ndarray((len(b),), "<u8", blob + bytes(8), 0, (1,))  # the 8 bytes from each offset
    length = ends - starts
    first = at[starts] & _MASK[np.minimum(length, 8)]
    last = np.zeros(len(starts), np.uint64)
    long = np.flatnonzero(length > 8)
    last[long] = at[ends[long] - 8]
    return starts, _mix(first ^ _mix(last ^ length.astype(np.uint64) * _Q))


def _gram_hashes(tokens: np.ndarray, size: int) -> np.ndarray:
    """Hash of every window of ``size`` consecutive token hashes (position-independent)."""
    n = len(tokens) - size + 1
    if n <= 0:
        return np.zeros(0, np.uint64)
    up, down = _powers(_Q, len(tokens) + 1)
    prefix = np.concatenate((np.zeros(1, np.uint64), np.cumsum(tokens * up[:len(tokens)], dtype=np.uint64)))
    return (prefix[size:size + n] - prefix[:n]) * down[:n]


def _gram_keys(grams: Sequence[tuple[str, ...]]) -> np.ndarray:
    """The hash ``_hits`` computes for each gram's words, for all grams in one pass."""
    if not grams:
        return np.zeros(0, np.uint64)
    _, hashes = _token_hashes("\n".join(" ".join(g) for g in grams).encode())
    first = np.cumsum([0, *(len(g) for g in grams)])[:-1]  # each word is one token
    out = np.empty(len(grams), np.uint64)
    for size in sorted({len(g) for g in grams}):
        mine = np.flatnonzero(np.array([len(g) for g in grams]) == size)
        out[mine] = _gram_hashes(hashes, size)[first[mine]]
    return out


class ContaminationIndex:
    """Eval-prompt n-grams: exact word tuples (for confirmation) and their hashes (for the batch check).

    Saved as the gram list (JSON) plus its hashes (``.npz`` beside it): every filter task loads the
    hashes at once and parses the grams only when a hash hits (most tasks: never)."""

    def __init__(self, grams: Iterable[tuple[str, ...]] | None = None, *, keys: np.ndarray | None = None,
                 lengths: Sequence[int] = (), exotic: bool = False, grams_path: Path | None = None):
        self._grams, self._grams_path = None if grams is None else set(grams), grams_path
        if keys is None:
            ascii_grams = [g for g in self.grams if all(w.isascii() for w in g)]
            keys, lengths = np.unique(_gram_keys(ascii_grams)), sorted({len(g) for g in self.grams})
            exotic = len(ascii_grams) != len(self.grams)  # a non-ASCII gram: ASCII texts go exact too
        self.keys, self.lengths, self.exotic = keys, list(lengths), exotic
        self.bitmap = np.zeros(_BITMAP, bool)  # a first look-up that stays in cache; hits are then searched
        self.bitmap[(self.keys & np.uint64(_BITMAP - 1)).astype(np.int64)] = True

    @property
    def grams(self) -> set[tuple[str, ...]]:
        if self._grams is None:
            self._grams = {tuple(g) for g in orjson.loads(Path(self._grams_path).read_bytes())["grams"]}
        return self._grams

    @classmethod
    def from_prompts(cls, test_prompts: Iterable[str], n: int) -> ContaminationIndex:
        return cls(eval_ngrams(test_prompts, n))

    @staticmethod
    def _hashes_path(path: str | Path) -> Path:
        return Path(path).with_suffix(".npz")

    def save(self, path: str | Path) -> None:
        """The hashes first, then the grams: the JSON file is the index's done-marker."""
        from distill.artifacts import atomic_write_json

        # a name of its own: the signature tasks of a Slurm array may each write the same index at once
        tmp = self._hashes_path(path).with_name(f".{Path(path).stem}.{uuid.uuid4().hex}.tmp.npz")
        np.savez(tmp, keys=self.keys, lengths=np.array(self.lengths, np.int64), exotic=np.array(self.exotic))
        tmp.rename(self._hashes_path(path))
        atomic_write_json(path, {"grams": sorted(list(g) for g in self.grams)})

    @classmethod
    def load(cls, path: str | Path) -> ContaminationIndex:
        hashes = cls._hashes_path(path)
        if not hashes.exists():  # an index saved before the hashes were
            return cls(tuple(g) for g in json.loads(Path(path).read_text())["grams"])
        with np.load(hashes) as saved:
            return cls(keys=saved["keys"], lengths=saved["lengths"].tolist(), exotic=bool(saved["exotic"]),
                       grams_path=Path(path))

    def exact(self, text: str) -> bool:
        tokens = words(text)
        return any(g in self.grams for size in self.lengths for g in ngrams(tokens, size))

    def contaminated(self, texts: Sequence[str]) -> np.ndarray:
        """One flag per text (prompt and completion are checked as separate texts)."""
        flags = np.zeros(len(texts), bool)
        if not self.lengths:  # no grams
            return flags
        lowered = [t.lower() for t in texts]
        fast = [i for i, t in enumerate(lowered) if t.isascii() and not self.exotic]
        for i in sorted(set(range(len(texts))) - set(fast)):
            flags[i] = self.exact(texts[i])
        if fast:
            for i in self._hits([lowered[i] for i in fast]):
                flags[fast[i]] = self.exact(texts[fast[i]])  # a hash hit, confirmed on the words
        return flags

    def _hits(self, texts: list[str]) -> set[int]:
        """Indices of texts with a window whose hash is in the index (a superset of the contaminated)."""
        blob = "\n".join(texts).encode()
        starts, hashes = _token_hashes(blob)
        text_ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)  # ASCII: chars = bytes

        def owner(tokens: np.ndarray) -> np.ndarray:
            return np.searchsorted(text_ends, starts[tokens], side="right")

        hits: set[int] = set()
        for size in self.lengths:
            grams = _gram_hashes(hashes, size)
            if not len(grams):
                continue
            maybe = np.flatnonzero(self.bitmap[(grams & np.uint64(_BITMAP - 1)).astype(np.int64)])
            pos = np.minimum(np.searchsorted(self.keys, grams[maybe]), len(self.keys) - 1)
            maybe = maybe[self.keys[pos] == grams[maybe]]
            first = owner(maybe)
            hits.update(first[first == owner(maybe + size - 1)].tolist())  # a window inside one text
        return hits
