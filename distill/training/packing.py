"""Packing tokenized examples into rows of ``seq_len`` without cross-contamination. Pure functions.

An example is ``prompt + completion + EOS`` (the EOS teaches the student to stop). Examples longer
than ``seq_len`` are truncated (and counted); no other example is ever split across rows.

Rows come from a buffered packer that reads examples in stream order: the buffer holds the next
``window`` examples; each row starts with the oldest of them (so no example waits more than
``window`` rows and the stream's order, e.g. the mix planner's interleave, is kept at that scale)
and is filled with the longest buffered examples that fit, looking one example ahead before it
would leave a gap nothing can fill. Padding waste on measured mixes: 1.3% for the arithmetic world
at seq_len 256, under 0.3% for GSM8K-like lengths at 1024 (``tests/unit/test_packing.py``). The
stream does not restart at a pass boundary, so there is no flush of half-empty rows between passes.

Inside a row every example gets its own position ids ``0..n-1`` and targets only inside itself (the
last token of A never predicts the first of B). transformers >= 5 derives a block-diagonal causal
mask from reset position ids when ``attention_mask`` is None and no cache is used
(``masking_utils.find_packed_sequence_indices``; sdpa, eager and flex alike), so no 4D mask is built
here: the caller passes ``position_ids`` and ``use_cache=False``. ``tests/smoke/test_train.py``
proves it for sdpa and eager: logits of an example inside a packed row equal its logits alone.
"""
from __future__ import annotations

import array
import bisect
import hashlib
import itertools
import math
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

IGNORE = -100


def n_targets(length: int, n_prompt: int) -> int:
    """Positions with a loss in one example: every token after the prompt (the first token never)."""
    return max(0, length - max(n_prompt, 1))


def n_learnable(length: int, n_prompt: int, learn: int | None) -> int:
    """Targets with a non-zero loss weight: all of them, or the first ``learn`` completion tokens
    when a first-error mark cuts the example (EOS is then never learned: the solution was wrong)."""
    full = n_targets(length, n_prompt)
    return full if learn is None else min(full, max(0, learn - max(0, 1 - n_prompt)))


def build_example(prompt: Sequence[int], completion: Sequence[int], eos: int,
                  seq_len: int) -> tuple[list[int], int, bool]:
    """``(ids, n_prompt, truncated)``: prompt + completion + EOS, cut to ``seq_len`` if longer."""
    ids = [*prompt, *completion, eos]
    return ids[:seq_len], len(prompt), len(ids) > seq_len


def pack(lengths: Sequence[int], seq_len: int, window: int = 64) -> list[list[int]]:
    """Rows of example indices (all of ``lengths``), each holding at most ``seq_len`` tokens."""
    return list(iter_rows(iter(enumerate(map(int, lengths))), seq_len, window))


def iter_rows(items: Iterator[tuple[int, int]], seq_len: int, window: int = 64) -> Iterator[list[int]]:
    """Pack ``(key, length)`` pairs read in stream order; yields rows of keys.

    A buffer holds the next ``window`` examples. Each row starts with the oldest buffered example
    (so an example waits at most ``window`` rows), then takes the longest buffered example that
    still fits, until none fits. Lengths must be in ``1..seq_len``.
    """
    if seq_len < 1 or window < 1:
        raise ValueError(f"seq_len={seq_len} and window={window} must be positive")
    buffer: list[tuple[int, int, int]] = []  # sorted (length, arrival, key)
    arrivals: deque[tuple[int, int, int]] = deque()  # the same entries, oldest first
    taken: set[int] = set()  # arrivals already packed (lazily dropped from `arrivals`)
    counter = itertools.count()

    def refill() -> None:
        while len(buffer) < window:
            pair = next(items, None)
            if pair is None:
                return
            key, length = pair
            if not 0 < length <= seq_len:
                raise ValueError(f"example {key}: length {length} is not in 1..seq_len={seq_len}")
            entry = (length, next(counter), key)
            bisect.insort(buffer, entry)
            arrivals.append(entry)

    while True:
        refill()
        if not buffer:
            return
        while arrivals[0][1] in taken:
            taken.discard(arrivals.popleft()[1])
        first = arrivals.popleft()
        buffer.pop(bisect.bisect_left(buffer, first))
        row, free = [first[2]], seq_len - first[0]
        while free:
            refill()
            j = _pick(buffer, free)
            if j < 0:
                break
            length, arrival, key = buffer.pop(j)
            taken.add(arrival)
            row.append(key)
            free -= length
        yield row


def _fit(buffer: list[tuple[int, int, int]], free: int) -> int:
    """Index of the longest buffered example of length <= free (-1: none)."""
    return bisect.bisect_right(buffer, (free, math.inf, math.inf)) - 1


def _pick(buffer: list[tuple[int, int, int]], free: int) -> int:
    """The longest example that fits, unless it would leave a gap no buffered example can fill:
    then the first of the pair of examples that fills the most of ``free``."""
    j = _fit(buffer, free)
    if j < 0 or buffer[j][0] == free or free - buffer[j][0] >= buffer[0][0]:
        return j
    best, best_fill = j, buffer[j][0]
    for i in range(j, -1, -1):
        k = _fit(buffer, free - buffer[i][0])
        k = k - 1 if k == i else k  # a different example, not the same one twice
        if k >= 0 and buffer[i][0] + buffer[k][0] > best_fill:
            best, best_fill = i, buffer[i][0] + buffer[k][0]
            if best_fill == free:
                break
    return best


def padding_waste(rows: Sequence[Sequence[int]], lengths: Sequence[int], seq_len: int) -> float:
    """Fraction of the ``len(rows) * seq_len`` slots that hold padding."""
    if not rows:
        return 0.0
    used = sum(lengths[i] for row in rows for i in row)
    return 1.0 - used / (len(rows) * seq_len)


@dataclass(frozen=True)
class Packed:
    """One micro-batch of packed rows (tensors of shape ``(rows, width)``; width <= seq_len)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor  # next-token ids, IGNORE where there is no loss
    weights: torch.Tensor  # per-token loss weight (the example's), 0 where there is no loss
    source_ids: torch.Tensor  # per-token source index, -1 on padding
    topk_ids: torch.Tensor | None = None  # (rows, width, k): teacher top-k at each target position
    topk_logprobs: torch.Tensor | None = None
    topk_mask: torch.Tensor | None = None  # (rows, width): True where the teacher's top-k is known


def collate(rows: Sequence[Sequence[int]], ids: Sequence[Sequence[int]], n_prompt: Sequence[int],
            weights: Sequence[float], sources: Sequence[int], pad_id: int,
            topk: tuple[Sequence, Sequence] | None = None,
            learn: Sequence[int | None] | None = None) -> Packed:
    """Tensors for ``rows`` (lists of example indices into the per-example sequences).

    ``topk`` is ``(topk_ids, topk_logprobs)`` per example: one list of k entries per completion
    token (EOS included or not); entry j is the teacher's distribution for completion token j.
    Width is the longest row, not ``seq_len``: trailing all-pad columns are never computed.
    ``learn`` (first_error rows): completion tokens that keep their weight (None or negative: all of
    them); the target positions from
    the first wrong step on (and the EOS) get weight 0 but stay targets, so the rows are unchanged.
    """
    width = max(sum(len(ids[i]) for i in row) for row in rows)
    shape = (len(rows), width)
    inp = torch.full(shape, pad_id, dtype=torch.long)
    pos = torch.zeros(shape, dtype=torch.long)
    tgt = torch.full(shape, IGNORE, dtype=torch.long)
    wts = torch.zeros(shape, dtype=torch.float32)
    src = torch.full(shape, -1, dtype=torch.long)
    k = _topk_width(rows, topk)
    tk_ids = torch.zeros((*shape, k), dtype=torch.long) if k else None
    tk_lp = torch.zeros((*shape, k), dtype=torch.float32) if k else None
    tk_mask = torch.zeros(shape, dtype=torch.bool) if k else None
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            seq, n, p = ids[i], len(ids[i]), n_prompt[i]
            inp[r, start:start + n] = torch.tensor(seq, dtype=torch.long)
            pos[r, start:start + n] = torch.arange(n)
            src[r, start:start + n] = sources[i]
            first = max(p, 1)  # first token that is a target
            if n > first:
                tgt[r, start + first - 1:start + n - 1] = torch.tensor(seq[first:], dtype=torch.long)
                cut = _cut(learn, i)
                stop = n if cut is None else first + n_learnable(n, p, cut)
                wts[r, start + first - 1:start + stop - 1] = float(weights[i])
            if k:
                _fill_topk(tk_ids, tk_lp, tk_mask, r, start, n, p, topk[0][i], topk[1][i])
            start += n
        pos[r, start:] = torch.arange(width - start)  # padding is its own segment
    return Packed(inp, pos, tgt, wts, src, tk_ids, tk_lp, tk_mask)


def _cut(learn: Sequence | None, i: int) -> int | None:
    """Example i's first-error cut; None (or a negative mark, as arrays hold it): no cut."""
    cut = None if learn is None else learn[i]
    return None if cut is None or cut < 0 else int(cut)


def _topk_width(rows: Sequence[Sequence[int]], topk: tuple[Sequence, Sequence] | None) -> int:
    if topk is None:
        return 0
    for row in rows:
        for i in row:
            if topk[0][i]:
                return len(topk[0][i][0])
    return 0


def _fill_topk(tk_ids, tk_lp, tk_mask, r: int, start: int, n: int, p: int, ids_i, lp_i) -> None:
    """Completion token j (at row offset start+p+j) is predicted from offset start+p+j-1."""
    count = min(len(ids_i or ()), n - p)  # truncation may cut the completion short
    if count <= 0 or p == 0:
        return
    lo = start + p - 1
    tk_ids[r, lo:lo + count] = torch.tensor(ids_i[:count], dtype=torch.long)
    tk_lp[r, lo:lo + count] = torch.tensor(lp_i[:count], dtype=torch.float32)
    tk_mask[r, lo:lo + count] = True


def pass_order(n: int, seed: int, index: int) -> list[int]:
    """Example order of pass ``index`` over the data: pass 0 is the data's own order (the mix
    planner's interleave), later passes are seeded shuffles (stable across processes and versions)."""
    order = list(range(n))
    if index > 0:
        digest = hashlib.sha256(f"distill-train/{seed}/{index}".encode()).digest()
        random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


class RowStream:
    """The packed rows a run trains on, as one endless, deterministic sequence.

    Row ``i`` depends only on (lengths, seq_len, seed, window), so step ``s`` reads rows
    ``[s * G, (s + 1) * G)`` in every process, after any resume. Passes over the data follow one
    another without a flush, so one global batch may hold the end of a pass and the start of the next.
    Rows packed so far are kept as one flat array of example indices (8 bytes per example read).
    """

    def __init__(self, lengths: Sequence[int], seq_len: int, seed: int, window: int = 64):
        if not len(lengths):
            raise ValueError("no examples to train on")
        self.lengths, self.seq_len, self.seed = np.asarray(lengths, dtype=np.int64), seq_len, seed
        self._flat = array.array("q")  # example indices of every row packed so far, row after row
        self._starts = array.array("q", [0])  # row i is _flat[_starts[i]:_starts[i + 1]]
        self._iter = iter_rows(self._keys(), seq_len, window)

    def _keys(self) -> Iterator[tuple[int, int]]:
        n, index = len(self.lengths), 0
        while True:
            for i in pass_order(n, self.seed, index):
                yield index * n + i, int(self.lengths[i])
            index += 1

    def _fill(self, stop: int) -> None:
        n = len(self.lengths)
        while len(self._starts) <= stop:
            self._flat.extend(k % n for k in next(self._iter))
            self._starts.append(len(self._flat))

    def rows(self, start: int, stop: int) -> list[list[int]]:
        """Rows ``start..stop-1`` as example indices."""
        self._fill(stop)
        return [self._flat[self._starts[r]:self._starts[r + 1]].tolist() for r in range(start, stop)]

    def passes_done(self, stop: int) -> float:
        """Passes over the data read by the first ``stop`` rows."""
        self._fill(stop)
        return self._starts[stop] / len(self.lengths)
