"""The streaming merge's dedup stages against brute force, distill's rules, and today's in-memory merge.

Run: pytest tests/smoke/test_dedup.py -q      (about a minute on 2 cores)
Generations are written by ``distill.generation.workload`` as real shard folders (no teacher): GSM8K-like
rows with planted exact copies, near copies and number variants.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from itertools import combinations

import numpy as np
import pytest
from datasets import load_from_disk

from distill.generation import dedup
from distill.generation.minhash import exact_jaccard
from distill.generation.pipeline import merge_and_filter, merge_in_memory
from distill.generation.workload import rows, write_generation
from distill.recipe.schema import Filters
from distill.sources import content_hash

pytestmark = pytest.mark.smoke
THRESHOLD = 0.9


def _brute_force_pairs(texts: list[str], threshold: float) -> set[tuple[int, int]]:
    """Every pair at or above the threshold by exact shingle Jaccard. Under distill's rule a pair whose
    digit runs differ is never a duplicate, so only rows with the same digits are compared (all of them)."""
    by_numbers = defaultdict(list)
    for i, text in enumerate(texts):
        by_numbers[tuple(re.findall(r"\d+", text))].append(i)
    return {(i, j) for group in by_numbers.values() for i, j in combinations(group, 2)
            if exact_jaccard(texts[i], texts[j]) >= threshold}


def test_near_dedup_matches_brute_force_on_20k_rows_with_planted_copies(tmp_path):
    n = 20_000
    shards = write_generation(tmp_path / "gen", n, shards=4, seed=3, exact=0.01, near=0.08, numbers=0.02,
                              max_words=16)
    out = merge_and_filter(shards, tmp_path / "out", filters=Filters(verify=False, decontaminate_ngram=0,
                                                                     near_dedup_threshold=THRESHOLD))
    texts = [p + "\n" + c for _, p, c in rows(n, seed=3, exact=0.01, near=0.08, numbers=0.02, max_words=16)]
    truth = _brute_force_pairs(texts, THRESHOLD)
    work = tmp_path / "out" / "work"
    settings = dedup.read_settings(work)
    found = {tuple(p) for t in range(settings["exact_partitions"], dedup.candidate_tasks(settings))
             for p in np.load(work / "candidates" / f"task-{t:04d}.npy").tolist()}
    hit = len(found & truth)
    near_threshold = sum(1 for i, j in truth if exact_jaccard(texts[i], texts[j]) < THRESHOLD + 0.05)
    assert len(truth) > 500 and near_threshold > 50, (len(truth), near_threshold)  # a test near the threshold
    print(f"pairs {len(truth)}, near the threshold {near_threshold}, recall {hit / len(truth):.4f}, "
          f"precision {hit / len(found):.4f}")
    assert hit / len(truth) >= 0.99, f"recall {hit / len(truth):.4f} ({hit}/{len(truth)})"
    assert hit / len(found) >= 0.99, f"precision {hit / len(found):.4f} ({hit}/{len(found)})"
    # the greedy rule on the true pairs removes the same rows as the stages
    codes = np.fromfile(work / "codes.u1", np.uint8)
    expected = _greedy(n, truth, {j for i, j in truth if texts[i] == texts[j]})
    assert set(np.flatnonzero(codes == dedup.NEAR).tolist()) == expected
    near = out["filters"]["near_dedup"]
    assert set(near["p_candidate"]) == {"0.5", "0.7", "0.8", "0.9"} and near["p_candidate"]["0.9"] >= 0.99
    assert 1 <= len(near["largest_clusters"]) <= 5 and near["largest_clusters"][0]["kept_text"]


def _greedy(n: int, pairs: set[tuple[int, int]], exact: set[int]) -> set[int]:
    """Brute-force reference of the cluster step: exact copies out first, then in prompt order a row
    pairing with an earlier kept row is a near duplicate."""
    earlier = defaultdict(list)
    for i, j in pairs:
        earlier[j].append(i)
    removed: set[int] = set()
    for j in range(n):
        if j not in exact and any(i not in exact and i not in removed for i in earlier[j]):
            removed.add(j)
    return removed


def test_a_number_only_difference_is_not_a_duplicate(tmp_path):
    base = ("Ava has 12 apples and buys 30 more at the market every week for 4 weeks. How many now?",
            ("She buys 30 * 4 = 120 apples, so she has 12 + 120 = 132 apples at the end of the "
             "month. #### 132"))
    variant = (base[0], base[1].replace("132 apples", "133 apples"))
    reworded = (base[0], base[1].replace("at the end", "by the end"))
    given = [base, variant, base, reworded]
    for other in (variant, reworded):  # both above the threshold: only the digits tell them apart
        assert exact_jaccard("\n".join(base), "\n".join(other)) >= THRESHOLD
    shards = write_generation(tmp_path / "gen", 0, shards=2, given=given)
    out = merge_and_filter(shards, tmp_path / "out", filters=Filters(verify=False, decontaminate_ngram=0))
    assert out["filters"]["exact_dedup"]["removed"] == 1
    assert out["filters"]["near_dedup"]["removed"] == 1
    kept = load_from_disk(str(tmp_path / "out" / "synthetic" / "data"))
    assert [r["completion"] for r in kept] == [base[1], variant[1]]


def test_same_sources_as_the_in_memory_merge_where_the_rules_did_not_change(tmp_path):
    """Exact dedup, length and decontamination keep their rules: with near-dedup off both paths
    publish the same rows (same content hash); verification marks the same rows."""
    shards = write_generation(tmp_path / "gen", 3000, shards=3, seed=5)
    tests = [p for _, p, _ in rows(40, seed=99)] + ["Short one"]
    filters = Filters(near_dedup_threshold=None, min_chars=400, max_chars=560, decontaminate_ngram=8)

    def verify(row: dict, completion: str) -> bool:
        return "1" in completion.rsplit("####", 1)[-1]

    out = merge_and_filter(shards, tmp_path / "new", filters=filters, verify=verify, test_prompts=tests)
    synthetic, verified, report = merge_in_memory(shards, filters, verify, tests)
    for name, expected in (("synthetic", synthetic), ("verified", verified)):
        from distill.generation.provenance import publish

        publish(expected, tmp_path / "old" / name, {"name": name, **_card_meta(report)})
        old = content_hash(load_from_disk(str(tmp_path / "old" / name / "data")))
        assert out["sources"][name]["content_hash"] == old, name
        assert content_hash(load_from_disk(str(tmp_path / "new" / name / "data"))) == old
    for step in ("length", "exact_dedup", "decontaminate"):
        assert out["filters"][step]["removed"] == report[step]["removed"] > 0, step
    assert out["filters"]["verify"] == report["verify"]
    meta = json.loads((tmp_path / "new" / "synthetic" / "meta.json").read_text())
    assert meta["rows"] == len(synthetic) and meta["prompts"]["count"] == 3000


def _card_meta(report: dict) -> dict:
    return {"rows": 0, "description": "", "filters": report, "teacher": {"model": "m", "backend": "hf"},
            "sampling": {}, "tokens": {"prompt": 0, "completion_generated": 0, "completion_published": 0},
            "wall_time_s": {"generation": 0.0}, "tokens_per_s": 0.0}


def test_rows_that_copy_the_human_pool_are_removed_and_the_pool_is_not_published(tmp_path):
    from distill.sources import save_source

    human = ("Ben reads 14 pages a day for 6 days. How many pages does he read?",
             "He reads 14 * 6 = 84 pages in the six days of the week. #### 84")
    near_copy = (human[0], human[1].replace("of the week", "of the weak"))
    own = ("Cara bakes 3 trays of 12 muffins. How many muffins?", "3 * 12 = 36 muffins. #### 36")
    save_source([{"id": "h0", "prompt": human[0], "completion": human[1], "origin": "human", "meta": {}}],
                tmp_path / "human")
    shards = write_generation(tmp_path / "gen", 0, shards=2, given=[human, near_copy, own])
    out = merge_and_filter(shards, tmp_path / "out", filters=Filters(verify=False, decontaminate_ngram=0),
                           references=[tmp_path / "human"])
    assert (out["filters"]["exact_dedup"]["removed"], out["filters"]["near_dedup"]["removed"]) == (1, 1)
    assert out["filters"]["references"] == {"sources": 1, "rows": 1, "exact_removed": 1, "near_removed": 1}
    card = (tmp_path / "out" / "synthetic" / "README.md").read_text()
    assert "against the human pool (1 rows, not published here): 1 exact and 1 near copies removed" in card
    kept = load_from_disk(str(tmp_path / "out" / "synthetic" / "data"))
    assert [(r["prompt"], r["completion"], r["origin"]) for r in kept] == [(*own, "synthetic")]
