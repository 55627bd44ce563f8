"""Unit tests for generation sharding, the chunk store, prompt files and the backend registry.
Run: pytest tests/unit/test_shards.py -q"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from distill.generation import GenerationError, shard_of
from distill.generation.backends import backend_class, requests_for, row_seed
from distill.generation.shards import ShardStore, shard_prompts

pytestmark = pytest.mark.unit
PLAN = {"num_chunks": 3, "seed": 0}


def test_shards_partition_prompts_stably_and_evenly():
    prompts = [{"id": f"p{i}", "prompt": "x"} for i in range(4000)]
    parts = [shard_prompts(prompts, s, 4) for s in range(4)]
    assert sorted(pos for part in parts for pos, _ in part) == list(range(4000))
    assert min(map(len, parts)) > 900  # roughly even
    # a prompt's shard depends on its id only, not on the order or the other prompts
    assert {r["id"]: s for s in range(4) for _, r in parts[s]}["p17"] == shard_of("p17", 4)
    assert shard_prompts(list(reversed(prompts)), 2, 4)[0][1]["id"] == parts[2][-1][1]["id"]
    with pytest.raises(GenerationError, match="shard 4 is out of range"):
        shard_prompts(prompts, 4, 4)


def test_row_seeds_depend_on_seed_id_and_sample_only():
    rows = [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}]
    seeds = [r.seed for r in requests_for(rows, 2, seed=7)]
    assert len(set(seeds)) == 4 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[2] == row_seed(7, "b", 0) == requests_for(rows[1:], 1, seed=7)[0].seed
    assert row_seed(8, "b", 0) != seeds[2]


def test_store_commits_resumes_and_adopts_unindexed_chunks(tmp_path):
    folder = tmp_path / "shard"
    store = ShardStore(folder, PLAN)
    assert not folder.exists() and store.committed() == set()
    store.commit(0, [{"id": "a"}, {"id": "b"}], {"wall_s": 1.0})
    store.commit(2, [{"id": "e"}], {"wall_s": 1.0})
    # a chunk renamed into place whose index line was never written (killed in between)
    ShardStore(tmp_path / "other", PLAN).commit(1, [{"id": "c"}, {"id": "d"}], {"wall_s": 2.0})
    (tmp_path / "other" / "chunk-000001.jsonl").rename(folder / "chunk-000001.jsonl")
    (folder / ".chunk-000001.jsonl.tmp123").write_text("half a chu")  # a killed temp write
    with open(folder / "index.jsonl", "a") as handle:
        handle.write('{"chunk": 1, "rows"')  # a torn index line
    resumed = ShardStore(folder, PLAN)
    assert resumed.committed() == {0, 1, 2} and resumed.complete()
    assert [r["id"] for r in resumed.records()] == ["a", "b", "c", "d", "e"]
    assert not list(folder.glob(".chunk-*"))
    lines = (folder / "index.jsonl").read_text().splitlines()
    assert [json.loads(x)["chunk"] for x in lines] == [0, 1, 2]
    assert Counter(json.loads(x)["rows"] for x in lines) == Counter({2: 2, 1: 1})


def test_store_refuses_a_different_plan(tmp_path):
    ShardStore(tmp_path, PLAN).commit(0, [{"id": "a"}], {"wall_s": 0.1})
    with pytest.raises(GenerationError, match=r"plan.json: this shard was started with seed=0, now 1"):
        ShardStore(tmp_path, {**PLAN, "seed": 1})


def test_backend_registry_suggests_close_names():
    with pytest.raises(GenerationError, match=r"unknown generation backend 'vlm'.*did you mean 'vllm'\?"):
        backend_class("vlm")
