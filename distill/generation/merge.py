"""The streaming merge: after the dedup stages (``dedup.py``), a filter task per shard and one publish.

4. ``filter_stage(work, s, verify)`` (one task per shard): streams shard ``s`` again, drops the rows the
   cluster step removed, decontaminates against the shared n-gram index, runs the verifier, and writes
   the kept rows as canonical JSON lines keyed by their prompt-order index, plus the per-shard counts.
5. ``publish_stage(work, out_dir, meta)`` (one task): a k-way merge of the shards' kept rows by index
   (prompt order, then sample) into the ``synthetic`` and ``verified`` sources, in Arrow batches.

No stage holds the rows: memory per task is a batch, the per-shard counts and, in the cluster step,
a few bytes per row. ``run_stages`` runs them all in this process, in order (the local executor).
"""
from __future__ import annotations

import hashlib
import heapq
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from distill.artifacts import atomic_write_json
from distill.generation import dedup
from distill.generation.contamination import ContaminationIndex
from distill.generation.filters import Verifier
from distill.generation.prompts import PROMPT_TEMPLATE, template_hash
from distill.generation.shards import ShardStore
from distill.sources import KD_COLUMNS

STEPS = (("length", dedup.LENGTH), ("exact_dedup", dedup.EXACT), ("near_dedup", dedup.NEAR),
         ("decontaminate", dedup.CONTAMINATED))
_STEP_OF = {code: name for name, code in STEPS}


GENERATED_META = ("prompt_id", "sample", "seed", "finish_reason", "completion_tokens", "prompt_tokens")


def source_row(rec: dict, samples: int) -> dict:
    """A source row ``{id, prompt, completion, origin, meta}`` (plus KD columns) from a shard record."""
    meta = {**rec["meta"], "prompt_id": rec["id"], "sample": rec["sample"], "seed": rec["seed"],
            "finish_reason": rec["finish_reason"], "completion_tokens": rec["n_tokens"],
            "prompt_tokens": rec["prompt_tokens"]}
    row = {"id": rec["id"] if samples == 1 else f"{rec['id']}#{rec['sample']}", "prompt": rec["prompt"],
           "completion": rec["completion"], "origin": "synthetic", "meta": meta}
    if "topk_ids" in rec:
        row.update(zip(KD_COLUMNS, (rec["token_ids"], rec["topk_ids"], rec["topk_logprobs"])))
    return row


def finish_merge(work: Path, out_dir: str | Path, started: float | None = None) -> dict:
    """The publish stage: both sources and ``report.json`` from the filter stages' outputs."""
    settings = dedup.read_settings(work)
    stores = [ShardStore.existing(folder) for folder in settings["shards"]]
    first = stores[0].plan
    headers = [h for s in stores for h in s.headers()]
    names = ["synthetic", *(["verified"] if settings["verify"] else [])]
    base = _source_meta(first, headers)

    def make_meta(stats: dict, name: str) -> dict:
        meta = _with_counts(base, stats, first)
        merge_s = None if started is None else round(time.perf_counter() - started, 3)
        return {**meta, "name": name, "filters": stats["report"],
                "tokens": {**meta["tokens"], "completion_published": stats["completion_published"]},
                "wall_time_s": {**meta["wall_time_s"], "merge": merge_s}}

    out = publish_stage(work, Path(out_dir), make_meta, names, kd=first["sampling"]["logprobs_topk"] > 0)
    out = {"filters": out["filters"], "tokens_per_s": base["tokens_per_s"], "sources": out["sources"]}
    atomic_write_json(Path(out_dir) / "report.json", out)
    return out


def _source_meta(plan: dict, headers: list[dict]) -> dict:
    """The source's meta from the shard plans and chunk headers (counts from the rows come later)."""
    from distill.generation.provenance import weights_hash  # the publish task only: it imports datasets
    from distill.recipe.schema import ModelSpec

    wall = sum(h["wall_s"] for h in headers)
    generated = sum(h["completion_tokens"] for h in headers)
    teacher = ModelSpec(**plan["teacher"])
    sampling = plan["sampling"]
    return {
        "kind": "source", "origin": "synthetic",
        "teacher": {**plan["teacher"], "weights_hash": weights_hash(teacher), "backend": plan["backend"],
                    "served_model": plan["served_model"],
                    "ran_on": [dict(b)
                               for b in sorted({tuple(sorted(h["backend"].items())) for h in headers})]},
        "sampling": {**sampling, "samples_per_prompt": plan["samples_per_prompt"], "seed": plan["seed"],
                     "row_seed": "sha256('{seed}/{prompt_id}/{sample}')[:8] >> 1"},
        "sharding": {"shards": plan["num_shards"], "chunk_size": plan["chunk_size"], "chunks": len(headers)},
        "tokens": {"prompt": sum(h["prompt_tokens"] for h in headers), "completion_generated": generated},
        "wall_time_s": {"generation": round(wall, 3)},
        "tokens_per_s": round(generated / wall, 2) if wall else 0.0,
        "kd": {"k": sampling["logprobs_topk"], "columns": list(KD_COLUMNS)} if sampling["logprobs_topk"]
        else None,
    }


def _with_counts(meta: dict, stats: dict, plan: dict) -> dict:
    """Add what needs the rows: the prompt count and hash (from the filter stages' prompt lines)."""
    count, digest = stats["prompts"]
    return {**meta,
            "description": (f"{count} prompts x {plan['samples_per_prompt']} samples, backend "
                            f"{plan['backend']}"),
            "prompts": {"count": count, "hash": digest, "template": PROMPT_TEMPLATE,
                        "template_hash": template_hash()},
            "tokens": {**meta["tokens"], "completion_generated": stats["completion_generated"]}}


def _filter_dir(work: Path, shard: int) -> Path:
    return Path(work) / "filtered" / f"shard-{shard:05d}"


def filter_stage(work: Path, shard: int, verify: Verifier | None) -> dict:
    """Kept rows of one shard (``kept.jsonl``), its prompt lines (``prompts.jsonl``), its counts."""
    from distill.sources import canonical_json, normalise, row_line

    settings, out = dedup.read_settings(work), _filter_dir(work, shard)
    if (out / "stats.json").exists():
        return json.loads((out / "stats.json").read_text())
    total = settings["rows_expected"]
    codes = np.memmap(Path(work) / "codes.u1", np.uint8, "r", shape=(total,))
    index_path = Path(work) / "contamination.json"
    index = ContaminationIndex.load(index_path) if index_path.exists() else None
    examples = set(json.loads((Path(work) / "cluster.json").read_text()).get("example_rows", []))
    counts = {name: 0 for name, _ in STEPS}
    verified = {"checked": 0, "passed": 0, "prompts": set(), "prompts_with_a_pass": set()}
    generated, texts = 0, {}
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with open(tmp / "kept.jsonl", "w", encoding="utf-8") as kept, \
            open(tmp / "prompts.jsonl", "w", encoding="utf-8") as prompts:
        for batch in _batches(dedup.shard_rows(settings["shards"][shard], settings["samples"])):
            kept_lines, prompt_lines = [], []  # one write per batch
            for (g, _, rec), code in zip(batch, _codes(batch, codes, index)):
                generated += rec["n_tokens"]
                if rec["sample"] == 0:
                    meta = {k: v for k, v in (rec["meta"] or {}).items() if k not in GENERATED_META}
                    prompt_lines.append(f"{g}\t{canonical_json([rec['id'], rec['prompt'], meta])}\n")
                if g in examples:
                    texts[str(g)] = rec["prompt"] + "\n" + rec["completion"]
                if code != dedup.KEPT:
                    counts[_STEP_OF[code]] += 1
                    continue
                row = source_row(rec, settings["samples"])
                ok = None
                if verify is not None:
                    ok = bool(verify(row, row["completion"]))
                    row["meta"]["verified"] = ok
                    _count_verify(verified, row, ok)
                line = (canonical_json({**normalise(row), **{c: row[c] for c in KD_COLUMNS if c in row}})
                        if KD_COLUMNS[0] in row else row_line(row))
                kept_lines.append(f"{g}\t{rec['n_tokens']}\t{int(bool(ok))}\t{line}\n")
            kept.write("".join(kept_lines))
            prompts.write("".join(prompt_lines))
    stats = {"removed": counts, "completion_generated": generated, "example_texts": texts,
             "verify": None if verify is None else {k: v if isinstance(v, int) else len(v)
                                                    for k, v in verified.items()}}
    atomic_write_json(tmp / "stats.json", stats)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return stats


def _batches(items: Iterable, size: int = 2048) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _codes(batch: list[tuple[int, int, dict]], codes: np.ndarray,
           index: ContaminationIndex | None) -> list[int]:
    """The cluster step's code of each row, with CONTAMINATED for kept rows the n-gram index flags."""
    out = codes[np.fromiter((g for g, _, _ in batch), np.int64, len(batch))].tolist()
    kept = [i for i, c in enumerate(out) if c == dedup.KEPT]
    if index is not None and kept:
        recs = [batch[i][2] for i in kept]
        flags = index.contaminated([r["prompt"] for r in recs] + [r["completion"] for r in recs])
        for i, hit in zip(kept, flags[:len(kept)] | flags[len(kept):]):
            if hit:
                out[i] = dedup.CONTAMINATED
    return out


def _count_verify(verified: dict, row: dict, ok: bool) -> None:
    verified["checked"] += 1
    verified["prompts"].add(row["meta"]["prompt_id"])
    if ok:
        verified["passed"] += 1
        verified["prompts_with_a_pass"].add(row["meta"]["prompt_id"])


def _merged(work: Path, shards: int, name: str) -> Iterator[list[str]]:
    """Tab-separated lines of every shard's ``name`` file in index order (each shard is in order)."""
    def lines(path: Path) -> Iterator[tuple[int, list[str]]]:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                fields = line.rstrip("\n").split("\t")
                yield int(fields[0]), fields

    for _, fields in heapq.merge(*(lines(_filter_dir(work, s) / name) for s in range(shards))):
        yield fields


def filter_report(work: Path, stats: list[dict]) -> dict:
    """The filters' report, in the order they apply: rows in / removed / out per step."""
    settings = dedup.read_settings(work)
    cluster = json.loads((Path(work) / "cluster.json").read_text())
    removed = {name: sum(s["removed"][name] for s in stats) for name, _ in STEPS}
    params = {"length": {"min_chars": settings["min_chars"], "max_chars": settings["max_chars"]},
              "exact_dedup": {},
              "near_dedup": {k: v for k, v in cluster.items() if k not in ("example_rows", "references")},
              "decontaminate": settings["decontaminate"]}
    texts = {g: t for s in stats for g, t in s["example_texts"].items()}
    for c in params["near_dedup"].get("largest_clusters", []):
        c["kept_text"], c["removed_text"] = texts.get(str(c["kept"])), texts.get(str(c["example_removed"]))
    report, rows = {"raw": settings["rows_expected"]}, settings["rows_expected"]
    if "references" in cluster:  # removed rows that copy the human pool are counted in exact / near too
        report["references"] = cluster["references"]
    for name, _ in STEPS:
        if name in settings["steps"]:
            report[name] = {"in": rows, "removed": removed[name], "out": rows - removed[name], **params[name]}
            rows -= removed[name]
    if all(s["verify"] is not None for s in stats):
        v = {k: sum(s["verify"][k] for s in stats) for k in stats[0]["verify"]}
        v["pass_rate"] = round(v["passed"] / v["checked"], 6) if v["checked"] else None
        v["prompt_pass_rate"] = (round(v["prompts_with_a_pass"] / v["prompts"], 6) if v["prompts"] else None)
        report["verify"] = v
    report["synthetic"] = rows
    report["verified"] = report["verify"]["passed"] if "verify" in report else None
    return report


def prompt_summary(work: Path, shards: int) -> tuple[int, str]:
    """(prompt count, ``prompts.prompts_hash`` of them) from the shards' prompt lines, in prompt order."""
    digest, count = hashlib.sha256(), 0
    for fields in _merged(work, shards, "prompts.jsonl"):
        digest.update(fields[1].encode() + b"\n")
        count += 1
    return count, digest.hexdigest()


def publish_stage(work: Path, out_dir: Path, make_meta: Callable[[dict, str], dict], names: list[str],
                  kd: bool = False) -> dict:
    """Write the ``names`` sources (``synthetic``, ``verified``) in one merge pass over the kept rows.

    A source with teacher log-probs (``kd``) is still collected in memory and read back for its hash:
    its float32 columns do not round-trip through JSON (not yet streamed)."""
    from distill.generation.provenance import SourceWriter, publish

    settings = dedup.read_settings(work)
    shards = len(settings["shards"])
    stats = [json.loads((_filter_dir(work, s) / "stats.json").read_text()) for s in range(shards)]
    report = filter_report(work, stats)
    writers = {name: [] if kd else SourceWriter(Path(out_dir) / name) for name in names}
    tokens = dict.fromkeys(names, 0)
    for _, n_tokens, ok, line in _merged(work, shards, "kept.jsonl"):
        for name, writer in writers.items():
            if name == "synthetic" or ok == "1":
                writer.append(json.loads(line)) if kd else writer.add(line)
                tokens[name] += int(n_tokens)
    stats_all = {"completion_generated": sum(s["completion_generated"] for s in stats),
                 "report": report, "prompts": prompt_summary(work, shards)}
    out = {"filters": report, "sources": {}}
    for name, writer in writers.items():
        meta = make_meta({**stats_all, "completion_published": tokens[name]}, name)
        folder = Path(out_dir) / name
        rows = len(writer) if kd else writer.rows
        digest = publish(writer, folder, {**meta, "rows": rows}, kd=True) if kd else writer.close(meta)
        out["sources"][name] = {"path": str(folder), "rows": rows, "content_hash": digest}
    return out
