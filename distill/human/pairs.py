"""Both sides of the expert's work: preference pairs from ``picked`` and ``edited`` rows.

A pick keeps (chosen, rejected): the draft the expert chose over the one it did not. An edit yields
(edit, draft) where the expert changed something; an edit that left the draft as it was says nothing
about which is better and gives no pair. Either way the other side is found by id among the drafts the
expert saw (``rejected_id`` / ``draft_id`` in the row's meta), so rows from every kind of expert
(simulated, model, Label Studio, Argilla) pair the same way.

A pick of neither (two wrong answers) that the expert still ranked (``pair_only`` in its meta) gives
a pair and no source row: ``row`` is False in its pair.

``save_pairs`` writes a ``datasets`` folder with columns prompt, chosen, rejected (plus id,
``human_s``, the row's expert seconds, and ``row``): what TRL's ``DPOTrainer`` and distill's
preference trainer read unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from distill.artifacts import atomic_dir
from distill.sources import meta_of


def preference_pairs(primitive: str, rows: Iterable[dict], drafts: Iterable[dict]) -> list[dict]:
    """``{id, prompt, chosen, rejected, human_s, row}`` per row that has two different sides."""
    from distill.human.primitives import HUMAN_PRIMITIVES, primitive_of

    key = primitive_of(primitive).pair_key
    if key is None:
        paired = [n for n in HUMAN_PRIMITIVES if primitive_of(n).pair_key]
        raise ValueError(f"primitive {primitive!r} keeps no pairs; only {paired} do")
    text = {str(d["id"]): d["completion"] for d in drafts}
    out = []
    for row in rows:
        meta = row["meta"] if isinstance(row["meta"], dict) else meta_of(row)  # fresh work or a loaded source
        other = meta.get("draft")  # an edit keeps the text it changed; a pick names the other draft
        other = other if other is not None else text.get(str(meta.get(key)))
        if other is None:
            raise ValueError(f"{primitive} row {row['id']!r}: {key}={meta.get(key)!r} is not among "
                             "the drafts")
        if other == row["completion"]:
            continue  # an edit that changed nothing (or a pick between twins): no preference in it
        out.append({"id": str(row["id"]), "prompt": row["prompt"], "chosen": row["completion"],
                    "rejected": other,
                    "human_s": float(meta.get("human_s", 0.0)), "row": not meta.get("pair_only", False)})
    return out


def save_pairs(pairs: list[dict], folder: str | Path) -> Path:
    """Write the pairs atomically as a ``datasets`` folder; return it."""
    from datasets import Dataset, Features, Value

    features = Features({"id": Value("string"), "prompt": Value("string"), "chosen": Value("string"),
                         "rejected": Value("string"), "human_s": Value("float64"), "row": Value("bool")})
    columns = {name: [p[name] for p in pairs] for name in features}
    with atomic_dir(folder) as tmp:
        Dataset.from_dict(columns, features=features).save_to_disk(str(tmp), num_shards=1)
    return Path(folder)
