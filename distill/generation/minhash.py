"""Vectorised one-permutation MinHash over byte 5-gram shingles, its LSH banding, and the row keys
the dedup stages compare (content digest for exact dedup, the digits a row carries).

Why not one hash function per permutation: 128-256 hashes per shingle is ~80k multiplications per
600-character row, far below 10k rows/s on one core. One-permutation hashing (Li et al. 2012) hashes
each shingle once, splits the hash range into ``NUM_BINS`` bins and keeps each bin's minimum; empty
bins are filled by rotation densification (Shrivastava & Li 2014), so two rows agree on a bin with
probability equal to their Jaccard similarity. A batch of rows is one numpy pass: concatenate the
bytes, slide a 5-byte window, mix, scatter-min into (row, bin).

Numbers are kept, not normalised: every band key also carries a digest of the row's digit runs in
order, so two rows whose numbers differ never become candidates (templated math problems that differ
only in their numbers are different problems).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

SHINGLE_BYTES = 5
NUM_BINS = 256
EMPTY = np.uint32(0xFFFFFFFF)
_DIGITS = re.compile(r"\d+")
_M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
# the offset added per bin of rotation, so a filled bin differs from its donor
_ROTATE = np.uint32(0x9E3779B1)


def example_text(row: dict) -> str:
    return row["prompt"] + "\n" + row["completion"]


def content_digest(prompt: str, completion: str) -> int:
    """64-bit digest of the (prompt, completion) pair: exact dedup's key (length-prefixed, unambiguous)."""
    blob = f"{len(prompt)}:{prompt}{completion}".encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little")


_NOT_DIGIT = bytes(c if 48 <= c <= 57 else 32 for c in range(256))


def numbers_digest(text: str) -> int:
    """64-bit digest of the digit runs of ``text`` in order ("" for a row with no digits)."""
    if text.isascii():  # bytes.translate is far faster than a regex; same runs for ASCII text
        blob = b"|".join(text.encode().translate(_NOT_DIGIT).split())
    else:
        blob = "|".join(_DIGITS.findall(text)).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: every input bit reaches every output bit (uint64, wraps)."""
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    return x ^ (x >> np.uint64(31))


def signatures(texts: Sequence[str], bins: int = NUM_BINS, batch: int = 64) -> np.ndarray:
    """``uint32[len(texts), bins]``: the densified one-permutation MinHash of each text's byte 5-grams.

    A text shorter than 5 bytes has one shingle, itself (zero-padded)."""
    out = np.empty((len(texts), bins), np.uint32)
    for start in range(0, len(texts), batch):  # small batches keep the temporaries in cache
        out[start:start + batch] = _batch_signatures(texts[start:start + batch], bins)
    return out


def _batch_signatures(texts: Sequence[str], bins: int) -> np.ndarray:
    n = len(texts)
    encoded = [t.encode() for t in texts]
    lengths = np.fromiter((len(e) for e in encoded), np.int64, n)
    pad = b"\0" * 8  # a row's last window reads zeros, never the next row
    raw = b"".join(e + pad for e in encoded) + pad
    segment = lengths + len(pad)
    windows = np.maximum(lengths - SHINGLE_BYTES + 1, 1)
    # every byte offset read as a little-endian uint64 (5 bytes kept): one pass, no loop
    h = np.ndarray((int(segment.sum()),), "<u8", raw, 0, (1,)) & np.uint64((1 << 8 * SHINGLE_BYTES) - 1)
    valid = np.repeat(np.tile(np.array([True, False]), n), np.stack([windows, segment - windows], 1).ravel())
    h = h[valid]
    h *= _M1  # multiply, xor-shift, multiply: the top bits pick the bin, the next 32 are the value
    h ^= h >> np.uint64(29)
    h *= _M2
    slot = (h >> np.uint64(64 - _BIN_BITS[bins])).astype(np.int64)
    slot += np.repeat(np.arange(0, n * bins, bins, dtype=np.int64), windows)
    sig = np.full(n * bins, EMPTY, np.uint32)
    np.minimum.at(sig, slot, (h >> np.uint64(64 - _BIN_BITS[bins] - 32)).astype(np.uint32))
    return _densify(sig.reshape(n, bins))


_BIN_BITS = {1 << k: k for k in range(1, 16)}  # bins must be a power of two


def _densify(sig: np.ndarray) -> np.ndarray:
    """Each empty bin takes the next non-empty bin to its right (circularly), plus an offset per step
    (rotation densification); the work is proportional to the number of empty bins."""
    rows, cols = np.nonzero(sig == EMPTY)
    if len(rows) == 0:
        return sig
    bins = sig.shape[1]
    donor = np.full(len(rows), EMPTY, np.uint32)
    todo = np.arange(len(rows))
    for step in range(1, bins):
        value = sig[rows[todo], (cols[todo] + step) % bins]
        found = value != EMPTY
        donor[todo[found]] = value[found] + np.uint32((step * int(_ROTATE)) & 0xFFFFFFFF)
        todo = todo[~found]
        if len(todo) == 0:
            break
    sig[rows, cols] = donor
    return sig


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal bins between signatures (rows of ``a`` against rows of ``b``, broadcast)."""
    return (a == b).mean(axis=-1)


RECALL_AT_THRESHOLD = 0.999


@lru_cache(maxsize=64)
def banding(threshold: float, bins: int = NUM_BINS) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (fewest chance candidates) for which a pair at
    exactly ``threshold`` still becomes a candidate with probability >= 0.999. The full-signature
    check, not the banding, then decides: recall at the threshold is the banding's to keep."""
    for rows in range(bins, 0, -1):
        if candidate_probability(threshold, bins // rows, rows) >= RECALL_AT_THRESHOLD:
            return bins // rows, rows
    return bins, 1


def shingle_set(text: str) -> set[bytes]:
    """The byte 5-grams ``signatures`` hashes, as a set (a text under 5 bytes is its own shingle)."""
    b = text.encode()
    return {b[i:i + SHINGLE_BYTES] for i in range(max(1, len(b) - SHINGLE_BYTES + 1))}


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = shingle_set(a), shingle_set(b)
    return len(sa & sb) / len(sa | sb)


def candidate_probability(jaccard, bands: int, rows: int):
    """P(two rows at this Jaccard share at least one band) = 1 - (1 - J^r)^b."""
    return 1.0 - (1.0 - np.asarray(jaccard, dtype=float) ** rows) ** bands


_COEFFICIENTS = _mix(np.arange(1, NUM_BINS + 1, dtype=np.uint64) * _M1) | np.uint64(1)


def band_keys(sig: np.ndarray, numbers: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``uint64[bands, n]``: band b's key hashes bins ``b*rows .. (b+1)*rows`` with the row's numbers
    digest (a multilinear hash of the bins with fixed odd coefficients, then mixed)."""
    n, used = sig.shape[0], bands * rows
    weighted = sig[:, :used].astype(np.uint64) * _COEFFICIENTS[:used]
    summed = weighted.reshape(n, bands, rows).sum(axis=2, dtype=np.uint64).T
    salt = _mix(np.arange(bands, dtype=np.uint64)[:, None] + np.uint64(1))
    return _mix(summed ^ _mix(numbers.astype(np.uint64) ^ salt))
