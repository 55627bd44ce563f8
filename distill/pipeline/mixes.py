"""Turn a planned mix into the training set a student sees: pools from sources, plan, index arrays on disk."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from datasets import Dataset

from distill.artifacts import atomic_write_json
from distill.human.ledger import per_row_overhead, run_seconds
from distill.mixing import MixPlan, Pool, plan_mix
from distill.pipeline.configs import Mix
from distill.recipe.schema import ModelSpec
from distill.sources import load_source, meta_of
from distill.training.data import write_mix
from distill.training.tokens import cached_table


@dataclass(frozen=True)
class _Source:
    """A source a mix may draw on: its planner pool, its rows, id -> row index and its token table."""

    pool: Pool
    folder: Path
    data: Dataset
    index: dict[str, int]
    tokens: Path  # the token table's folder (distill.training.tokens)


@lru_cache(maxsize=8)
def _source_table(folder: str, tokenizer_name: str,
                  cache: str) -> tuple[Dataset, dict[str, int], Path, tuple]:
    """A source, its id -> row index, its token table's folder and each row's token count (as the
    trainer counts it) for one tokenizer. Cached per worker process: a sweep plans dozens of mixes
    from the same few sources, and the table itself is tokenized once per machine (``cached_table``).
    """
    from distill.models import load_tokenizer

    data = load_source(folder)
    table, tokens = cached_table(Path(folder), load_tokenizer(tokenizer_name), Path(cache))
    index = {row_id: i for i, row_id in enumerate(data["id"])}
    return data, index, tokens, tuple(table.example_lengths.tolist())


def _pools(human_dir: Path, merge_dir: Path | None, tokenizer: str, cache: Path,
           worked: Mapping[str, Path] | None = None) -> dict[str, _Source]:
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
        data, index, tokens, lengths = _source_table(str(folder), tokenizer, str(cache))
        out[name] = _Source(Pool(name, origin, tuple(data["id"]), lengths), folder, data, index, tokens)
    return out


def _ledger(plan: MixPlan, pools: dict, worked: Mapping[str, Path]) -> dict:
    """Expert seconds of the unique rows this mix uses (see distill.human.ledger)."""
    used = {e.source for e in plan.entries}
    seconds, overhead = {}, {}
    for name in used:
        data = pools[name].data
        metas = []
        if "meta" in data.column_names:  # read in batches: a row at a time costs minutes at a million rows
            for batch in data.select_columns(["meta"]).iter(batch_size=8192):
                metas.extend(meta_of({"meta": m}) for m in batch["meta"])
        seconds[name] = {rid: float(m.get("human_s", 0.0)) for rid, m in zip(data["id"], metas)}
        work = worked.get(name)
        if work is not None and (work.parent / "work.json").exists():
            summary = json.loads((work.parent / "work.json").read_text())
            overhead[name] = per_row_overhead(summary["discarded_s"], summary["rows"])
    return run_seconds(((e.source, e.id) for e in plan.entries), seconds, overhead)


def plan_of(mix: Mix, student: ModelSpec, human_dir: Path, merge_dir: Path | None,
            worked: Mapping[str, Path], tokens: Path) -> tuple[MixPlan, dict]:
    """The plan of a mix (which rows, from which source), and the pools it was drawn from.

    ``tokens``: where the sources' token tables are cached (a tokens-unit plan needs their lengths).
    """
    pools = _pools(human_dir, merge_dir, student.model, tokens, worked)
    plan = plan_mix(mix.arm, mix.n, mix.seed, {k: v.pool for k, v in pools.items()}, unit=mix.unit,
                    wall=mix.wall, weights=mix.weights or None)
    return plan, pools


def materialise_mix(mix: Mix, student: ModelSpec, human_dir: Path, merge_dir: Path | None,
                    out: Path, worked: Mapping[str, Path] | None = None,
                    tokens: Path | None = None) -> tuple[MixPlan, Path]:
    """Plan the mix described by a train step's ``mix`` slice and write it as a mix folder.

    The folder holds index arrays into the sources' token tables (``distill.training.data.write_mix``),
    not rows. ``tokens``: where token tables are cached (default: ``tokens/`` beside ``out``).
    ``worked``: expert-worked sources by name (their ``source`` folders). The human seconds of the
    mix go to ``human_time.json`` beside ``out``.
    """
    worked = dict(worked or {})
    plan, pools = plan_of(mix, student, human_dir, merge_dir, worked, tokens or out.parent / "tokens")
    if not plan.feasible:
        return plan, out
    used = sorted({e.source for e in plan.entries})  # numbered by name: the trainer's source order
    number = {name: k for k, name in enumerate(used)}
    count = len(plan.entries)
    table = np.fromiter((number[e.source] for e in plan.entries), dtype=np.int16, count=count)
    row = np.fromiter((pools[e.source].index[e.id] for e in plan.entries), dtype=np.int64, count=count)
    weight = np.fromiter((e.weight for e in plan.entries), dtype=np.float64, count=count)
    tables = [{"name": n, "source": str(pools[n].folder), "tokens": str(pools[n].tokens)} for n in used]
    # first_error rows learn only before the mark (the table holds it; other rows have none)
    write_mix(out, tables, table, row, weight, learn="first_error" in number, content_hash=plan.content_hash)
    atomic_write_json(out.parent / "human_time.json", _ledger(plan, pools, worked))
    return plan, out
