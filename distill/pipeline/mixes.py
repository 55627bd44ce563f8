"""Turn a planned mix into the training set a student sees: pools from sources, plan, rows on disk."""
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from datasets import Dataset

from distill.artifacts import atomic_write_json
from distill.human.ledger import per_row_overhead, run_seconds
from distill.mixing import MixPlan, Pool, plan_mix
from distill.pipeline.configs import Mix
from distill.recipe.schema import ModelSpec
from distill.sources import TOPK_COLUMNS, load_source, meta_of
from distill.training.data import LEARN_COLUMN, example_length, tokenize


@lru_cache(maxsize=8)
def _source_table(folder: str, tokenizer_name: str) -> tuple[Dataset, dict[str, int], tuple[int, ...]]:
    """A source, its id -> row index, and each row's token count (as the trainer counts it) for one tokenizer.

    Cached per worker process: a sweep plans dozens of mixes from the same few sources.
    """
    from distill.models import load_tokenizer

    data = load_source(folder)
    tok = load_tokenizer(tokenizer_name)
    if len(data) == 0:  # e.g. nothing passed the verifier: an empty pool, planned as such
        return data, {}, ()
    prompts, completions = tokenize(tok, list(data["prompt"]), list(data["completion"]))
    tokens = tuple(example_length(p, c) for p, c in zip(prompts, completions))  # as the trainer counts them
    index = {row_id: i for i, row_id in enumerate(list(data["id"]))}
    return data, index, tokens


def _pools(human_dir: Path, merge_dir: Path | None, tokenizer: str,
           worked: Mapping[str, Path] | None = None) -> dict[str, tuple[Pool, Dataset, dict]]:
    """Every source a mix may draw on. Expert-worked sources (edited, first_error, picked) supply an
    arm's human part, so their pools play the ``human`` role in the planner."""
    named = {"human": (human_dir, "human")}
    if merge_dir is not None:
        named.update({"synthetic": (merge_dir / "synthetic", "synthetic"),
                      "verified": (merge_dir / "verified", "synthetic")})
    named.update({name: (folder, "human") for name, folder in (worked or {}).items()})
    out = {}
    for name, (folder, origin) in named.items():
        if not (folder / "data").exists():
            continue
        data, index, tokens = _source_table(str(folder), tokenizer)
        out[name] = (Pool(name, origin, tuple(data["id"]), tokens), data, index)
    return out


def _ledger(plan: MixPlan, pools: dict, worked: Mapping[str, Path]) -> dict:
    """Expert seconds of the unique rows this mix uses (see distill.human.ledger)."""
    used = {e.source for e in plan.entries}
    seconds, overhead = {}, {}
    for name in used:
        _, data, _ = pools[name]
        metas = [meta_of(r) for r in data.select_columns(["meta"])] if "meta" in data.column_names else []
        seconds[name] = {rid: float(m.get("human_s", 0.0)) for rid, m in zip(data["id"], metas)}
        work = worked.get(name)
        if work is not None and (work.parent / "work.json").exists():
            summary = json.loads((work.parent / "work.json").read_text())
            overhead[name] = per_row_overhead(summary["discarded_s"], summary["rows"])
    return run_seconds(((e.source, e.id) for e in plan.entries), seconds, overhead)


def plan_of(mix: Mix, student: ModelSpec, human_dir: Path, merge_dir: Path | None,
            worked: Mapping[str, Path]) -> tuple[MixPlan, dict]:
    """The plan of a mix (which rows, from which source), and the pools it was drawn from."""
    pools = _pools(human_dir, merge_dir, student.model, worked)
    plan = plan_mix(mix.arm, mix.n, mix.seed, {k: v[0] for k, v in pools.items()}, unit=mix.unit,
                    wall=mix.wall, weights=mix.weights or None)
    return plan, pools


def materialise_mix(mix: Mix, student: ModelSpec, human_dir: Path, merge_dir: Path | None,
                    out: Path, worked: Mapping[str, Path] | None = None) -> tuple[MixPlan, Path]:
    """Plan the mix described by a train step's ``mix`` slice and write its rows as a dataset.

    ``worked``: expert-worked sources by name (their ``source`` folders). The human seconds of the
    mix go to ``human_time.json`` beside ``out``.
    """
    worked = dict(worked or {})
    plan, pools = plan_of(mix, student, human_dir, merge_dir, worked)
    if not plan.feasible:
        return plan, out
    marks = any(e.source == "first_error" for e in plan.entries)
    rows = []
    for entry in plan.entries:
        _, data, index = pools[entry.source]
        row = data[index[entry.id]]
        item = {"prompt": row["prompt"], "completion": row["completion"], "source": entry.source,
                "weight": entry.weight}
        if marks:  # first_error rows learn only before the mark (-1: no mark, or not a first_error row)
            item[LEARN_COLUMN] = int(meta_of(row).get("learn_chars", -1))
        item.update({c: row[c] for c in TOPK_COLUMNS if c in row})  # what training reads
        rows.append(item)
    Dataset.from_list(rows).save_to_disk(str(out))
    atomic_write_json(out.parent / "human_time.json", _ledger(plan, pools, worked))
    return plan, out
