"""Publishing a generated source: the dataset, its card (README.md) and meta.json, all at once.

A source folder appears whole or not at all: dataset, card and meta are written into a hidden
staging folder beside it, which is then renamed into place. The content hash is computed from the
dataset as written (read back from disk), so anyone can recompute it with ``sources.content_hash``.

Teacher log-probs for KD live in the dataset itself, as three extra columns with one entry per token
of ``tokenizer(completion, add_special_tokens=False)`` plus one for EOS when generation stopped on it
(how a trainer tokenizes a completion): ``teacher_token_ids`` (list[int]), ``teacher_topk_ids``
(list[list[int]], k per token) and ``teacher_topk_logprobs`` (list[list[float32]]).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from distill.artifacts import atomic_dir, atomic_write_json, atomic_write_text, tree_hash, write_meta
from distill.generation.shards import parse_json_line
from distill.recipe.schema import ModelSpec
from distill.sources import KD_COLUMNS, content_hash


def weights_hash(spec: ModelSpec) -> str | None:
    """sha256 over a local teacher's safetensors files; None for a hub id or a remote server."""
    if not spec.model or not Path(spec.model).expanduser().is_dir():
        return None
    folder = Path(spec.model).expanduser()
    return tree_hash(folder, "*.safetensors") if any(folder.rglob("*.safetensors")) else None


def _save_dataset(rows: list[dict], folder: Path, kd: bool) -> None:
    from datasets import Dataset, Features, List, Value

    from distill.sources import FEATURES, normalise, save_source

    if rows and not kd:
        save_source(rows, folder)
        return
    # sources.save_source keeps only the base columns and fails on zero rows (lead: see the report)
    features = dict(FEATURES)
    if kd:
        features.update({"teacher_token_ids": List(Value("int32")),
                         "teacher_topk_ids": List(List(Value("int32"))),
                         "teacher_topk_logprobs": List(List(Value("float32")))})
    table = [{**normalise(r), **{c: r[c] for c in KD_COLUMNS if kd}} for r in rows]
    columns = {name: [row[name] for row in table] for name in features}
    # num_shards=1: datasets writes no Arrow file for zero rows otherwise, and cannot load that back
    Dataset.from_dict(columns, features=Features(features)).save_to_disk(str(folder / "data"), num_shards=1)


def publish(rows: list[dict], folder: str | Path, meta: dict, kd: bool = False) -> str:
    """Write rows as a source at ``folder`` with README.md and meta.json; return its content hash."""
    from datasets import load_from_disk

    with atomic_dir(folder) as ready:
        _save_dataset(rows, ready, kd)
        digest = content_hash(load_from_disk(str(ready / "data")))
        meta = {**meta, "content_hash": digest}
        write_meta(ready, **meta)
        atomic_write_text(ready / "README.md", dataset_card(meta))
    return digest


class SourceWriter:
    """A source written row by row in Arrow record batches: memory does not grow with the row count.

    Rows come as canonical JSON lines, ``json.dumps(normalise(row), sort_keys=True, ensure_ascii=False)``:
    exactly what ``sources.content_hash`` hashes for a row read back, so the hash is computed on the
    way out instead of by reading the dataset back. ``close(meta)`` writes card and meta and renames
    the staged folder into place; a writer never closed leaves nothing behind."""

    BATCH = 10_000

    def __init__(self, folder: str | Path):
        from datasets.arrow_writer import ArrowWriter

        from distill.sources import FEATURES

        self.folder, self.features = Path(folder), FEATURES
        self._stage = contextlib.ExitStack()
        self.ready = self._stage.enter_context(atomic_dir(folder))
        (self.ready / "data").mkdir()
        self._writer = ArrowWriter(features=FEATURES, path=str(self.ready / "data" / _ARROW))
        self._digest = hashlib.sha256(json.dumps(sorted(FEATURES)).encode())
        self._batch: list[dict] = []
        self.rows = 0

    def add(self, line: str) -> None:
        self._digest.update(line.encode() + b"\n")
        self._batch.append(parse_json_line(line))
        self.rows += 1
        if len(self._batch) == self.BATCH:
            self._flush()

    def _flush(self) -> None:
        self._writer.write_batch({name: [r[name] for r in self._batch] for name in self.features})
        self._batch = []

    def close(self, meta: dict) -> str:
        """Finish the dataset, write README.md and meta.json, publish; return the content hash."""
        self._flush()
        self._writer.finalize()
        digest = self._digest.hexdigest()
        data = self.ready / "data"
        atomic_write_json(data / "dataset_info.json", {"citation": "", "description": "",
                                                       "features": self.features.to_dict(),
                                                       "homepage": "", "license": ""})
        atomic_write_json(data / "state.json", {  # datasets' own layout; the fingerprint from the content
            "_data_files": [{"filename": _ARROW}], "_fingerprint": digest[:16], "_format_columns": None,
            "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None})
        meta = {**meta, "rows": self.rows, "content_hash": digest}
        write_meta(self.ready, **meta)
        atomic_write_text(self.ready / "README.md", dataset_card(meta))
        self._stage.close()
        return digest


_ARROW = "data-00000-of-00001.arrow"


def dataset_card(meta: dict) -> str:
    """A short markdown card: what the data is, how it was made, what was filtered, how to load it."""
    teacher, sampling, report, tokens = meta["teacher"], meta["sampling"], meta["filters"], meta["tokens"]
    steps = [(k, v) for k, v in report.items() if isinstance(v, dict) and "removed" in v]
    intro = (f"{meta['rows']} rows `{{id, prompt, completion, origin, meta}}` generated by distill "
             f"({meta['description']}). Load with `datasets.load_from_disk('<this folder>/data')`; "
             "TRL's `SFTTrainer` trains on the prompt/completion columns as they are.")
    lines = [
        f"# {meta['name']}: synthetic data from {teacher['model']}", "", intro, "",
        "## Teacher", "",
        (f"- model: `{teacher['model']}` (revision `{teacher.get('revision')}`, dtype "
         f"`{teacher.get('dtype')}`)"),
        f"- weights sha256: `{teacher.get('weights_hash')}`",
        f"- backend: `{teacher['backend']}`", "",
        "## Sampling", "",
        *[f"- {k}: `{v}`" for k, v in sampling.items()], "",
        "## Filters", "",
        f"raw rows: {report['raw']}", "",
        "| step | in | removed | out |", "|---|---|---|---|",
        *[f"| {name} | {v['in']} | {v['removed']} | {v['out']} |" for name, v in steps], "",
    ]
    if refs := report.get("references"):
        # the human pool is the first reference; an accumulating lineage adds its earlier generations
        earlier = refs["sources"] - 1
        also = f" and {earlier} earlier generation(s)' data" if earlier else ""
        lines += [(f"Deduplicated against the human pool{also} ({refs['rows']} rows, not published here): "
                   f"{refs['exact_removed']} exact and {refs['near_removed']} near copies removed "
                   "(counted in the steps above)."), ""]
    if report.get("verify"):
        v = report["verify"]
        lines += [(f"Verifier: {v['passed']}/{v['checked']} samples pass (rate {v['pass_rate']}); "
                   f"{v['prompts_with_a_pass']}/{v['prompts']} prompts have a passing sample."), ""]
    lines += [
        "## Numbers", "",
        (f"- prompt tokens: {tokens['prompt']}, generated tokens: {tokens['completion_generated']}, "
         f"completion tokens in this source: {tokens['completion_published']}"),
        (f"- generation wall time: {meta['wall_time_s']['generation']:.1f} s, "
         f"{meta['tokens_per_s']:.1f} generated tokens/s"),
        f"- content hash (sha256 over all rows and columns): `{meta['content_hash']}`",
    ]
    if meta.get("kd"):
        columns = ", ".join(f"`{c}`" for c in KD_COLUMNS)
        lines += ["", "## Teacher log-probs (KD)", "",
                  (f"Columns {columns}: one entry per token of `tokenizer(completion, "
                   "add_special_tokens=False)`"
                   f", plus one for EOS when generation stopped on it; top-{meta['kd']['k']} ids and "
                   "log-probs of the teacher at temperature 1.")]
    return "\n".join(lines) + "\n"
