"""Mixes as index arrays into cached token tables: the same examples, in the same order, packed into
the same batches as the row-copying path they replace; nested sizes stay per-source prefixes.

Run: pytest tests/unit/test_mix_tokens.py -q
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from datasets import Dataset

from distill.human.expert import step_offset
from distill.mixing import MixPlan
from distill.pipeline.configs import Mix
from distill.pipeline.mixes import materialise_mix
from distill.recipe.schema import Arm, ModelSpec, Wall
from distill.sources import TOPK_COLUMNS, load_source, meta_of, save_source
from distill.training.data import load_corpus
from distill.training.packing import RowStream, build_example, collate, n_learnable
from distill.training.tokens import cached_table, learnable_tokens, open_table, tokenize
from distill.world.arithmetic import problems, record

pytestmark = pytest.mark.unit
SEQ_LEN = 48  # short enough that some examples are cut


@pytest.fixture(scope="module")
def sources(tmp_path_factory, world, tiny_model_dir):
    """human, synthetic (with stored teacher top-k) and first_error sources of the embedded world."""
    from distill.models import load_tokenizer

    root = tmp_path_factory.mktemp("sources")
    tok = load_tokenizer(str(tiny_model_dir))
    save_source([record(p) for p in problems(world, "human", 150)], root / "human")
    rows = [record(p, origin="synthetic") for p in problems(world, "prompts", 120)]
    for row in rows[::10]:
        row["completion"] = row["completion"] * 8  # longer than SEQ_LEN: cut
    rng = random.Random(0)
    topk = [[[rng.randrange(len(tok)) for _ in range(3)]
             for _ in tok(r["completion"], add_special_tokens=False)
             ["input_ids"]] for r in rows]
    data = Dataset.from_list([{**r, "meta": "{}", TOPK_COLUMNS[0]: k,
                               TOPK_COLUMNS[1]: [[-0.5, -1.0, -2.0]] * len(k)} for r, k in zip(rows, topk)])
    data.save_to_disk(str(root / "merge" / "synthetic" / "data"))
    marked = []
    for i, p in enumerate(problems(world, "prompts", 80, start=500)):
        row = record(p, origin="first_error")
        k = i % 3  # a mark on step 0 or 1, or none
        row["meta"] = {"learn_chars": step_offset(row["completion"], k)} if k < 2 else {}
        marked.append(row)
    save_source(marked, root / "first_error")
    return root


def _mix(n: int, human: str = "human", fraction: float = 0.4, seed: int = 3) -> Mix:
    return Mix(arm=Arm(name="a", fraction=fraction, human=human), n=n, seed=seed, unit="examples",
               wall=Wall(policy="repeat", max_epochs=3), weights={"synthetic": 0.5})


def _materialise(sources, tiny_model_dir, mix: Mix, out) -> MixPlan:
    worked = {"first_error": sources / "first_error"} if mix.arm.human == "first_error" else {}
    plan, _ = materialise_mix(mix, ModelSpec(model=str(tiny_model_dir)), sources / "human", sources / "merge",
                              out, worked=worked, tokens=sources / "tokens")
    assert plan.feasible
    return plan


def _old_rows(plan: MixPlan, sources) -> list[dict]:
    """The training rows as the row-copying path wrote them (pipeline/mixes.py before token tables)."""
    folders = {"human": sources / "human", "synthetic": sources / "merge" / "synthetic",
               "first_error": sources / "first_error"}
    data = {name: load_source(folder) for name, folder in folders.items()}
    index = {name: {rid: i for i, rid in enumerate(d["id"])} for name, d in data.items()}
    marks = any(e.source == "first_error" for e in plan.entries)
    rows = []
    for e in plan.entries:
        row = data[e.source][index[e.source][e.id]]
        item = {"prompt": row["prompt"], "completion": row["completion"], "source": e.source,
                "weight": e.weight}
        if marks:
            item["learn_chars"] = int(meta_of(row).get("learn_chars", -1))
        item.update({c: row[c] for c in TOPK_COLUMNS if c in row})
        rows.append(item)
    return rows


def _old_corpus(rows: list[dict], tok) -> dict:
    """Python lists, as the old ``load_corpus`` built them."""
    prompts, completions = tokenize(tok, [r["prompt"] for r in rows], [r["completion"] for r in rows])
    built = [build_example(p, c, tok.eos_token_id, SEQ_LEN) for p, c in zip(prompts, completions)]
    sources = sorted({r["source"] for r in rows})
    learn = learnable_tokens(tok, [r["completion"] for r in rows], [r["learn_chars"] for r in rows]) \
        if "learn_chars" in rows[0] else None
    return {"ids": [b[0] for b in built], "n_prompt": [b[1] for b in built],
            "weights": [r["weight"] for r in rows],
            "sources": [sources.index(r["source"]) for r in rows], "learn": learn,
            "topk": ([r.get(TOPK_COLUMNS[0]) for r in rows], [r.get(TOPK_COLUMNS[1]) for r in rows])}


@pytest.mark.parametrize("human", ["human", "first_error"])
def test_the_mix_folder_gives_the_same_packed_batches_as_the_rows_it_replaces(sources, tiny_model_dir,
                                                                             tmp_path, human):
    from distill.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    plan = _materialise(sources, tiny_model_dir, _mix(160, human), tmp_path / "mix")
    old = _old_corpus(_old_rows(plan, sources), tok)
    new = load_corpus(tmp_path / "mix", tok, SEQ_LEN, want_topk=True)
    assert [len(x) for x in old["ids"]] == new.lengths.tolist()
    assert new.truncated == sum(len(x) == SEQ_LEN for x in old["ids"]) > 0
    assert (new.learn is None) == (human == "human")
    a, b = RowStream([len(x) for x in old["ids"]], SEQ_LEN, seed=3), RowStream(new.lengths, SEQ_LEN, seed=3)
    for start in range(0, 80, 8):  # more than one pass over the 160 examples
        rows = a.rows(start, start + 8)
        assert rows == b.rows(start, start + 8)
        ref = collate(rows, old["ids"], old["n_prompt"], old["weights"], old["sources"], 0, old["topk"],
                      learn=old["learn"])
        got = collate(rows, new.ids, new.n_prompt, new.weights, new.source_index, 0, new.topk,
                      learn=new.learn)
        for field in ("input_ids", "position_ids", "targets", "weights", "source_ids", "topk_ids",
                      "topk_logprobs", "topk_mask"):
            x, y = getattr(ref, field), getattr(got, field)
            assert (x is None and y is None) or torch.equal(x, y), field
        assert ref.weights.sum() > 0
        cut = old["learn"] or [None] * len(old["ids"])
        assert new.loss_weight(rows) == sum(old["weights"][i] * n_learnable(len(old["ids"][i]),
                                                                            old["n_prompt"][i],
                                                                           cut[i]) for r in rows for i in r)


def test_a_plain_training_folder_reads_as_the_old_lists(sources, tiny_model_dir, tmp_path):
    """Rows written as a ``datasets`` folder (e.g. a lineage's mix) go through the same tables."""
    from distill.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    rows = _old_rows(_materialise(sources, tiny_model_dir, _mix(90, "first_error"), tmp_path / "mix"),
                     sources)
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "rows"))
    old, new = _old_corpus(rows, tok), load_corpus(tmp_path / "rows", tok, SEQ_LEN)
    assert [list(map(int, new.ids[i])) for i in range(len(new))] == old["ids"]
    assert new.n_prompt.tolist() == old["n_prompt"] and new.source_index.tolist() == old["sources"]
    assert [None if c < 0 else c for c in new.learn.tolist()] == old["learn"]
    assert new.weights.tolist() == old["weights"]


def test_nested_sizes_are_per_source_prefixes_of_the_index_arrays(sources, tiny_model_dir, tmp_path):
    _materialise(sources, tiny_model_dir, _mix(100), tmp_path / "small")
    large = _materialise(sources, tiny_model_dir, _mix(300), tmp_path / "large")  # the human pool repeats
    assert large.epochs["human"] > 1

    def per_source(folder) -> dict[int, list[int]]:
        table, row = np.load(folder / "table.npy"), np.load(folder / "row.npy")
        return {t: row[table == t].tolist() for t in np.unique(table)}

    a, b = per_source(tmp_path / "small"), per_source(tmp_path / "large")
    assert set(a) == set(b) == {0, 1}
    for t in a:
        assert len(a[t]) < len(b[t]) and b[t][:len(a[t])] == a[t]
    # the order is the planner's interleave, entry by entry
    ids = {name: list(load_source(folder)["id"]) for name, folder in
           (("human", sources / "human"), ("synthetic", sources / "merge" / "synthetic"))}
    table, row = np.load(tmp_path / "large" / "table.npy"), np.load(tmp_path / "large" / "row.npy")
    names = ("human", "synthetic")
    assert ([(names[t], ids[names[t]][r]) for t, r in zip(table, row)]
            == [(e.source, e.id) for e in large.entries])


def test_a_source_is_tokenized_once_and_its_table_holds_its_text(sources, tiny_model_dir, tmp_path):
    from distill.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    cache = tmp_path / "tokens"
    table, folder = cached_table(sources / "human", tok, cache)
    mtime = (folder / "table.json").stat().st_mtime_ns
    _, same = cached_table(sources / "human", tok, cache)
    assert same == folder and (folder / "table.json").stat().st_mtime_ns == mtime
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no staging left behind
    data = load_source(sources / "human")
    p, c = tokenize(tok, data["prompt"][:5], data["completion"][:5])
    for r in range(5):
        assert (open_table(folder).example(r, tok.eos_token_id, 999).tolist()
                == [*p[r], *c[r], tok.eos_token_id])
    assert table.example_lengths.tolist()[:5] == [len(x) + len(y) + 1 for x, y in zip(p, c)]
