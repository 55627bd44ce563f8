"""Unit tests for the generation quality pipeline (distill.generation.filters).
Run: pytest tests/unit/test_filters.py -q"""
from __future__ import annotations

import pytest

from distill.generation.filters import (
    by_length,
    decontaminate,
    eval_ngrams,
    exact_dedup,
    near_dedup,
    run_filters,
    verify_rows,
)
from distill.recipe.schema import Filters

pytestmark = pytest.mark.unit


def row(i: int, prompt: str, completion: str, answer: str | None = None) -> dict:
    return {"id": f"r{i}", "prompt": prompt, "completion": completion,
            "meta": {"prompt_id": prompt, "answer": answer}}


def check(r: dict, completion: str) -> bool:
    return completion.endswith("A:" + r["meta"]["answer"])


def test_length_bounds_are_inclusive():
    rows = [row(0, "p", ""), row(1, "p", "ab"), row(2, "p", "abcd"), row(3, "p", "abcde")]
    assert [r["id"] for r in by_length(rows, 2, 4)] == ["r1", "r2"]


def test_exact_dedup_keeps_first_and_is_per_prompt():
    rows = [row(0, "a", "x"), row(1, "a", "x"), row(2, "b", "x"), row(3, "a", "y")]
    assert [r["id"] for r in exact_dedup(rows)] == ["r0", "r2", "r3"]


def test_near_dedup_removes_near_copies_keeps_different_texts():
    base = "The quick brown fox jumps over the lazy dog and keeps running through the field. " * 3
    rows = [row(0, "p", base), row(1, "p", base + "!"), row(2, "p", base.replace("fox", "cat", 1)),
            row(3, "p", "Completely unrelated text about column arithmetic: 7+9=16;4+8+1=13;A:936")]
    kept = [r["id"] for r in near_dedup(rows, threshold=0.8)]
    assert kept == ["r0", "r3"]
    assert [r["id"] for r in near_dedup(rows, threshold=1.0)] == ["r0", "r1", "r2", "r3"]


def test_decontamination_by_word_ngrams_and_whole_short_prompts():
    tests = ["Q:347+589=", "what is the capital city of france and why is it famous"]
    grams = eval_ngrams(tests, 8)
    assert ("q", ":", "347", "+", "589", "=") in grams  # shorter than n: the whole prompt
    rows = [row(0, "Q:347+589=", "7+9=16"),  # the test prompt itself
            row(1, "Q:347+581=", "x"),  # a different problem
            row(2, "tell me: what is the capital city of France and why is it", "x"),  # 8-gram shared
            row(3, "what is the capital city of spain", "x"),
            row(4, "p", "and the answer: Q:347+589= as asked")]  # leaked into a completion
    kept = decontaminate(rows, tests, 8)
    assert [r["id"] for r in kept] == ["r1", "r3"]
    assert decontaminate(rows, [], 8) == rows


def test_verify_marks_rows_and_counts_prompt_level_passes():
    rows = [row(0, "a", "A:1", "1"), row(1, "a", "A:2", "1"), row(2, "b", "A:5", "3"),
            row(3, "c", "A:3", "3")]
    passed, stats = verify_rows(rows, check)
    assert [r["id"] for r in passed] == ["r0", "r3"]
    assert [r["meta"]["verified"] for r in rows] == [True, False, False, True]
    assert stats == {"checked": 4, "passed": 2, "pass_rate": 0.5, "prompts": 3, "prompts_with_a_pass": 2,
                     "prompt_pass_rate": 0.666667}


def test_run_filters_counts_every_step_in_order():
    rows = [row(0, "Q:1+1=", "A:2", "2"), row(1, "Q:1+1=", "A:2", "2"),  # exact duplicate
            row(2, "Q:2+2=", "", "4"),  # too short
            row(3, "Q:347+589=", "A:936", "936"),  # contaminated
            row(4, "Q:3+3=", "A:7", "6"), row(5, "Q:4+4=", "A:8", "8")]
    filters = Filters(near_dedup_threshold=None, decontaminate_ngram=8, min_chars=1)
    synthetic, verified, report = run_filters(rows, filters, ["Q:347+589="], check)
    assert [r["id"] for r in synthetic] == ["r0", "r4", "r5"]
    assert [r["id"] for r in verified] == ["r0", "r5"]
    assert report["raw"] == 6
    assert [(k, report[k]["removed"]) for k in ("length", "exact_dedup", "decontaminate")] == [
        ("length", 1), ("exact_dedup", 1), ("decontaminate", 1)]
    assert "near_dedup" not in report
    assert report["verify"]["passed"] == 2 and report["synthetic"] == 3 and report["verified"] == 2


def test_run_filters_without_verifier_publishes_no_verified_rows():
    rows = [row(0, "a", "x"), row(1, "b", "y")]
    synthetic, verified, report = run_filters(rows, Filters(verify=False), [], None)
    assert len(synthetic) == 2 and verified is None and report["verified"] is None
