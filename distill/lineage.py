"""Iterated self-training, pure parts: which rows each generation trains on, and how diverse they are.

Pools are numbered as the chain makes them: pool 0 is the human pool, pool k (k >= 1) the synthetic
data that generation k-1's student wrote for generation k. Policies (Gerstgrasser et al. 2024;
Kazdan et al. 2024 for the subsample):
- ``replace``: generation k trains on pool k only (real data is thrown away after generation 0);
- ``accumulate``: on pools 0..k, everything so far;
- ``accumulate-subsample``: on a seeded sample of fixed size from pools 0..k (the same compute and
  data budget as replace, but drawn from the growing pool).
Generation 0 trains on the human pool under every policy.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

POLICIES = ("replace", "accumulate", "accumulate-subsample")


def policy_rows(policy: str | None, generation: int, pool_sizes: Sequence[int], *,
                subsample: int | None = None,
                seed: int = 0) -> list[tuple[int, int]]:
    """(pool, row index) pairs generation ``generation`` trains on, in pool order.

    ``pool_sizes[k]`` is the number of rows of pool k; pools beyond ``generation`` are ignored.
    """
    if generation < 0 or generation >= len(pool_sizes):
        raise ValueError(f"generation {generation}: need pools 0..{generation}, have {len(pool_sizes)}")
    if generation == 0:
        return [(0, i) for i in range(pool_sizes[0])]
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r}: expected one of {POLICIES}")
    if policy == "replace":
        return [(generation, i) for i in range(pool_sizes[generation])]
    everything = [(k, i) for k in range(generation + 1) for i in range(pool_sizes[k])]
    if policy == "accumulate":
        return everything
    if subsample is None or subsample <= 0:
        raise ValueError(f"accumulate-subsample needs a positive subsample size, got {subsample!r}")
    if subsample >= len(everything):
        return everything
    # one stream per (seed, generation): a generation's sample does not shift when a later one is added
    rng = np.random.default_rng([seed, generation])
    keep = np.sort(rng.choice(len(everything), size=subsample, replace=False))
    return [everything[i] for i in keep]


def distinct_ngrams(sequences: Sequence[Sequence], n: int = 3) -> float:
    """Distinct n-grams / all n-grams over token sequences (NaN when there are none).

    The ratio falls as a corpus grows, so compare it on samples of equal size (``diversity`` does).
    """
    grams = [tuple(seq[i:i + n]) for seq in sequences for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def diversity(completions: Sequence[str], tokenize: Callable[[str], Sequence],
              extract_answer: Callable[[str], str | None],
              *, n: int = 3, sample: int | None = None, seed: int = 0) -> dict:
    """Distinct token n-grams and the share of distinct final answers of a training set's completions,
    on a seeded sample of ``sample`` rows (all rows when None or larger), so that sets of different
    sizes (accumulate's pool grows) stay comparable. Rows without an answer count as one answer, None."""
    rows = list(completions)
    if sample is not None and sample < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=sample, replace=False))
        rows = [rows[i] for i in keep]
    answers = [extract_answer(c) for c in rows]
    return {"rows": len(rows), "ngram": n, "distinct_ngrams": distinct_ngrams([tokenize(c) for c in rows], n),
            "distinct_answers": len(set(answers)) / len(answers) if answers else float("nan")}
