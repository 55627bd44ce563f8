"""Turn a planned mix into the training set a student sees: pools from sources, plan, rows on disk."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from datasets import Dataset

from distill.mixing import Arm, Pool, Wall, plan_mix, MixPlan
from distill.recipe.schema import ModelSpec
from distill.sources import load_source

KD_COLUMNS = ("teacher_topk_ids", "teacher_topk_logprobs")


@lru_cache(maxsize=8)
def _source_table(folder: str, tokenizer_name: str) -> tuple[Dataset, dict[str, int], tuple[int, ...]]:
    """A source, its id -> row index, and each row's token count (prompt + completion) for one tokenizer.

    Cached per worker process: a sweep plans dozens of mixes from the same few sources.
    """
    from distill.models import load_tokenizer

    data = load_source(folder)
    tok = load_tokenizer(tokenizer_name)
    if len(data) == 0:  # e.g. nothing passed the verifier: an empty pool, planned as such
        return data, {}, ()
    prompts = tok(list(data["prompt"]), add_special_tokens=False)["input_ids"]
    completions = tok(list(data["completion"]), add_special_tokens=False)["input_ids"]
    tokens = tuple(len(p) + len(c) + 1 for p, c in zip(prompts, completions))  # +1: EOS
    index = {row_id: i for i, row_id in enumerate(list(data["id"]))}
    return data, index, tokens


def _pools(human_dir: Path, merge_dir: Path | None, tokenizer: str) -> dict[str, tuple[Pool, Dataset, dict]]:
    named = {"human": (human_dir, "human")}
    if merge_dir is not None:
        named.update({"synthetic": (merge_dir / "synthetic", "synthetic"),
                      "verified": (merge_dir / "verified", "synthetic")})
    out = {}
    for name, (folder, origin) in named.items():
        if not (folder / "data").exists():
            continue
        data, index, tokens = _source_table(str(folder), tokenizer)
        out[name] = (Pool(name, origin, tuple(data["id"]), tokens), data, index)
    return out


def materialise_mix(mix: dict, student: ModelSpec, human_dir: Path, merge_dir: Path | None,
                    out: Path) -> tuple[MixPlan, Path]:
    """Plan the mix described by a train step's ``mix`` slice and write its rows as a dataset."""
    pools = _pools(human_dir, merge_dir, student.model)
    arm_cfg = mix["arm"]
    fraction = arm_cfg["fraction"]
    arm = Arm(arm_cfg["name"], fraction, human="human" if fraction < 1 else None,
              synthetic=arm_cfg["synthetic"] if fraction > 0 or mix["wall"]["policy"] == "fill" else None)
    plan = plan_mix(arm, mix["n"], mix["seed"], {k: v[0] for k, v in pools.items()}, unit=mix["unit"],
                    wall=Wall(**mix["wall"]), weights=mix["weights"] or None)
    if not plan.feasible:
        return plan, out
    rows = []
    for entry in plan.entries:
        _, data, index = pools[entry.source]
        row = data[index[entry.id]]
        item = {"prompt": row["prompt"], "completion": row["completion"], "source": entry.source,
                "weight": entry.weight}
        item.update({c: row[c] for c in KD_COLUMNS if c in row})
        rows.append(item)
    Dataset.from_list(rows).save_to_disk(str(out))
    return plan, out
