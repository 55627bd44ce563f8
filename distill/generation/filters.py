"""The quality pipeline: pure functions over generated rows, each step counted in a report.

Order: length -> exact duplicates -> near duplicates (MinHash LSH) -> decontamination -> verifier.
The rows that survive the first four are the "synthetic" source; those the verifier accepts are the
"verified" one (rejection sampling over ``samples_per_prompt`` samples per prompt). A row is
``{id, prompt, completion, meta, ...}``; steps keep the first occurrence and never reorder.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the recipe schema (pydantic) costs a dedup array task ~0.3 s to import
    from distill.recipe.schema import Filters

Verifier = Callable[[dict, str], bool]  # (prompt row with meta, completion) -> correct?
_WORDS = re.compile(r"\w+|[^\w\s]")
SHINGLE_CHARS = 5
NUM_PERM = 128


def example_text(row: dict) -> str:
    return row["prompt"] + "\n" + row["completion"]


def by_length(rows: Sequence[dict], min_chars: int, max_chars: int) -> list[dict]:
    return [r for r in rows if min_chars <= len(r["completion"]) <= max_chars]


def exact_dedup(rows: Sequence[dict]) -> list[dict]:
    """Drop rows whose (prompt, completion) pair was seen before."""
    seen: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        key = (row["prompt"], row["completion"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def minhash(text: str, num_perm: int = NUM_PERM):
    """MinHash of character 5-gram shingles: works for text without spaces (arithmetic, code)."""
    from datasketch import MinHash  # the in-memory path only: the streaming stages do not need it

    shingles = {text[i:i + SHINGLE_CHARS] for i in range(max(1, len(text) - SHINGLE_CHARS + 1))}
    signature = MinHash(num_perm=num_perm, seed=1)
    signature.update_batch([s.encode() for s in sorted(shingles)])
    return signature


def near_dedup(rows: Sequence[dict], threshold: float, num_perm: int = NUM_PERM) -> list[dict]:
    """Drop rows whose estimated Jaccard similarity to an earlier kept row reaches ``threshold``.

    LSH proposes candidates (banded for at most 0.97: datasketch cannot band higher thresholds with
    128 permutations); each candidate is confirmed on the full MinHash estimate."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=min(threshold, 0.97), num_perm=num_perm)
    kept: dict = {}
    out = []
    for index, row in enumerate(rows):
        signature = minhash(example_text(row), num_perm)
        if any(signature.jaccard(kept[key]) >= threshold for key in lsh.query(signature)):
            continue
        kept[str(index)] = signature
        lsh.insert(str(index), signature)
        out.append(row)
    return out


def words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def eval_ngrams(test_prompts: Iterable[str], n: int) -> set[tuple[str, ...]]:
    """Word n-grams of the eval prompts; a prompt shorter than n contributes itself whole."""
    grams: set[tuple[str, ...]] = set()
    for prompt in test_prompts:
        tokens = words(prompt)
        grams.update(ngrams(tokens, n) if len(tokens) >= n else [tuple(tokens)] if tokens else [])
    return grams


def decontaminate(rows: Sequence[dict], test_prompts: Iterable[str], n: int) -> list[dict]:
    """Drop rows whose prompt or completion shares a word n-gram with an eval prompt."""
    grams = eval_ngrams(test_prompts, n)
    if not grams:
        return list(rows)
    lengths = sorted({len(g) for g in grams})

    def contaminated(row: dict) -> bool:
        for text in (row["prompt"], row["completion"]):
            tokens = words(text)
            if any(g in grams for size in lengths for g in ngrams(tokens, size)):
                return True
        return False

    return [r for r in rows if not contaminated(r)]


def verify_rows(rows: Sequence[dict], verify: Verifier) -> tuple[list[dict], dict]:
    """Mark every row ``meta.verified``; return the verified rows and pass-rate statistics."""
    passed, prompts, prompts_passed = [], set(), set()
    for row in rows:
        ok = bool(verify(row, row["completion"]))
        row["meta"]["verified"] = ok
        prompts.add(row["meta"].get("prompt_id", row["id"]))
        if ok:
            passed.append(row)
            prompts_passed.add(row["meta"].get("prompt_id", row["id"]))
    stats = {"checked": len(rows), "passed": len(passed), "pass_rate": _rate(len(passed), len(rows)),
             "prompts": len(prompts), "prompts_with_a_pass": len(prompts_passed),
             "prompt_pass_rate": _rate(len(prompts_passed), len(prompts))}
    return passed, stats


def run_filters(rows: list[dict], filters: Filters, test_prompts: Sequence[str] = (),
                verify: Verifier | None = None) -> tuple[list[dict], list[dict] | None, dict]:
    """(synthetic rows, verified rows or None, report). Every step records rows in/out/removed."""
    report: dict = {"raw": len(rows)}
    steps: list[tuple[str, Callable[[list[dict]], list[dict]], dict]] = [
        ("length", lambda rs: by_length(rs, filters.min_chars, filters.max_chars),
         {"min_chars": filters.min_chars, "max_chars": filters.max_chars}),
    ]
    if filters.exact_dedup:
        steps.append(("exact_dedup", exact_dedup, {}))
    if filters.near_dedup_threshold is not None:
        steps.append(("near_dedup", lambda rs: near_dedup(rs, filters.near_dedup_threshold),
                      {"threshold": filters.near_dedup_threshold, "shingle_chars": SHINGLE_CHARS,
                       "num_perm": NUM_PERM}))
    if filters.decontaminate_ngram:
        steps.append(("decontaminate",
                      lambda rs: decontaminate(rs, test_prompts, filters.decontaminate_ngram),
                      {"ngram": filters.decontaminate_ngram, "test_prompts": len(test_prompts)}))
    for name, step, params in steps:
        kept = step(rows)
        report[name] = {"in": len(rows), "removed": len(rows) - len(kept), "out": len(kept), **params}
        rows = kept
    verified = None
    if filters.verify and verify is not None:
        verified, report["verify"] = verify_rows(rows, verify)
    report["synthetic"] = len(rows)
    report["verified"] = None if verified is None else len(verified)
    return rows, verified, report


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None
