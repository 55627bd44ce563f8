"""Generation end to end: prompts -> shards of chunked teacher outputs -> filtered, published sources.

- ``generate_shard`` fills one shard folder (resumable: committed chunks are skipped, a kill loses at
  most the chunk in flight). Each shard can live in its own folder (a DAG step, a Slurm array task).
- ``merge_and_filter`` checks that the given shard folders form one complete generation, merges them
  in prompt order, runs the quality pipeline and publishes ``synthetic/`` and ``verified/`` sources
  (dataset + README.md + meta.json) and ``report.json`` under its output folder.
- ``run_generation`` does all shards in one process (``out_dir/shards/shard-i-of-N``), then the merge.
"""
from __future__ import annotations

import heapq
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from distill.generation.backends import Backend, Sampling, make_backend, requests_for
from distill.generation.errors import GenerationError
from distill.generation.filters import Verifier, run_filters
from distill.generation.merge import source_row
from distill.generation.prompts import check_prompts, prompts_hash
from distill.generation.shards import ShardStore, shard_folder, shard_prompts
from distill.recipe.schema import Filters, Generation, ModelSpec

LOGPROB_DIGITS = 5  # stored log-probs are rounded: 1e-5 nats is far below what KD can notice
# shard plan keys that differ between the shards of one generation; every other key must agree
PER_SHARD = ("shard", "num_chunks", "prompts", "prompts_hash")


def generate_shard(prompts: Sequence[dict], teacher: ModelSpec, gen: Generation, out_dir: str | Path,
                   shard: int = 0, *, shards: int | None = None, backend: Backend | None = None,
                   device: str | None = None, progress: bool = True) -> dict:
    """Generate shard ``shard`` of ``shards`` (default ``gen.shards``) into the folder ``out_dir``.

    ``prompts`` is the full prompt list (every shard sees the same list and keeps its own ids);
    ``backend``: reuse a loaded backend (else one is built from ``gen.backend`` and closed after);
    ``device``: for ``hf`` (None: ``cuda:<shard mod GPUs>`` or ``cpu``; ``"auto"``: device_map).
    Returns a JSON-able summary.
    """
    prompts = check_prompts(prompts)
    num_shards = shards or gen.shards
    check_teacher(teacher, gen)
    check_output_dir(out_dir)
    mine = shard_prompts(prompts, shard, num_shards)
    chunks = [mine[i:i + gen.chunk_size] for i in range(0, len(mine), gen.chunk_size)]
    store = ShardStore(out_dir, shard_plan(mine, shard, num_shards, teacher, gen))
    store.write_plan()
    todo = [c for c in range(len(chunks)) if c not in store.committed()]
    owned = backend is None and bool(todo)
    if owned:
        backend = build_backend(teacher, gen, device, shard)
    bar = tqdm(total=len(mine), initial=sum(len(chunks[c]) for c in store.committed()), unit="prompt",
               disable=not progress, desc=f"generate shard {shard}/{num_shards}", dynamic_ncols=True,
               mininterval=1.0)
    start, tokens = time.perf_counter(), 0
    try:
        for chunk in todo:
            entry = _generate_chunk(chunks[chunk], chunk, backend, gen, store)
            tokens += entry["completion_tokens"]
            bar.update(len(chunks[chunk]))  # tqdm shows the ETA; tok/s is this run's generated tokens
            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}", refresh=False)
    finally:
        bar.close()
        if owned:
            backend.close()
    return _shard_summary(store, len(todo))


def build_backend(teacher: ModelSpec, gen: Generation, device: str | None = None, shard: int = 0) -> Backend:
    """``gen.backend`` for ``teacher``; the hf backend lands on ``device`` or the shard's default device."""
    if gen.backend != "hf":
        return make_backend(gen.backend, teacher, gen)
    from distill.runtime import device_for

    return make_backend("hf", teacher, gen, device=device or device_for(shard))


def _generate_chunk(chunk: list[tuple[int, dict]], index: int, backend: Backend, gen: Generation,
                    store: ShardStore) -> dict:
    started = time.perf_counter()
    by_id = {row["id"]: (pos, row) for pos, row in chunk}
    requests = requests_for([row for _, row in chunk], gen.samples_per_prompt, gen.seed)
    completions = backend.generate(requests, Sampling.from_config(gen))
    records = [_record(*by_id[r.id], r.seed, c) for r, c in zip(requests, completions)]
    header = {"prompts": len(chunk), "wall_s": round(time.perf_counter() - started, 4),
              "prompt_tokens": sum(c.prompt_tokens or 0 for c in completions),
              "completion_tokens": sum(c.n_tokens for c in completions), "backend": backend.describe()}
    return store.commit(index, records, header)


def _record(pos: int, row: dict, seed: int, c) -> dict:
    record = {"pos": pos, "id": row["id"], "sample": c.sample, "seed": seed, "prompt": row["prompt"],
              "meta": row.get("meta") or {}, "completion": c.text, "finish_reason": c.finish_reason,
              "n_tokens": c.n_tokens, "prompt_tokens": c.prompt_tokens}
    if c.topk_ids is not None:
        record["token_ids"] = c.token_ids
        record["topk_ids"] = c.topk_ids
        record["topk_logprobs"] = [[round(v, LOGPROB_DIGITS) for v in step] for step in c.topk_logprobs]
    return record


def shard_plan(mine: Sequence[tuple[int, dict]], shard: int, num_shards: int, teacher: ModelSpec,
               gen: Generation) -> dict:
    """Everything that decides a shard's content; batch size and concurrency do not, so they may change."""
    sampling = Sampling.from_config(gen)
    return {
        "version": 1, "shard": shard, "num_shards": num_shards, "chunk_size": gen.chunk_size,
        "num_chunks": math.ceil(len(mine) / gen.chunk_size), "prompts": len(mine),
        "prompts_hash": prompts_hash([row for _, row in mine]), "backend": gen.backend,
        "teacher": teacher.model_dump(include={"model", "revision", "dtype", "trust_remote_code"}),
        "served_model": gen.openai.model if gen.backend == "openai" else None,
        "sampling": {"max_new_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
                     "top_p": sampling.top_p, "logprobs_topk": sampling.logprobs_topk},
        "samples_per_prompt": gen.samples_per_prompt, "seed": gen.seed,
    }


def _shard_summary(store: ShardStore, generated: int) -> dict:
    headers = store.headers()
    wall = sum(h["wall_s"] for h in headers)
    tokens = sum(h["completion_tokens"] for h in headers)
    return {"shard": store.plan["shard"], "num_shards": store.plan["num_shards"], "folder": str(store.folder),
            "prompts": store.plan["prompts"], "chunks": store.num_chunks, "chunks_generated_now": generated,
            "complete": store.complete(), "completion_tokens": tokens, "wall_s": round(wall, 3),
            "tokens_per_s": round(tokens / wall, 2) if wall else None}


def check_teacher(teacher: ModelSpec, gen: Generation) -> None:
    """Fail fast, before anything is written, on a teacher that cannot be there."""
    if gen.backend == "openai" and gen.openai.base_url is not None:
        return  # a remote server: nothing local to check
    if not teacher.model:
        raise GenerationError("teacher.model is not set: give a local model folder or a hub id")
    name = teacher.model
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not Path(name).expanduser().exists():
        raise GenerationError(f"teacher model path {name!r} does not exist")


def check_output_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and prove a file can be written there, or fail in one line."""
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise GenerationError(f"output folder {str(path)!r} is not writable "
                              f"({exc.strerror or exc})") from None
    return path


def merge_and_filter(shard_dirs: Sequence[str | Path], out_dir: str | Path, *, filters: Filters | None = None,
                     verify: Verifier | None = None, test_prompts: Sequence[str] = (),
                     references: Sequence[str | Path] = ()) -> dict:
    """Merge complete shards in prompt order, filter, publish ``synthetic`` (and ``verified``) sources.

    ``verify(row, completion)``: the task's verifier (e.g. ``Task.verify``), required when
    ``filters.verify``; ``test_prompts``: the eval prompts to decontaminate against; ``references``:
    source folders (the human pool) whose duplicates are removed. Runs the dedup stages of
    ``dedup.py`` and ``merge.py`` one after the other in this process, in ``out_dir/work``.
    """
    from distill.generation import dedup
    from distill.generation.dedup_task import STAGES, run_task, task_count
    from distill.generation.merge import finish_merge

    started = time.perf_counter()
    work = prepare_merge(shard_dirs, out_dir, filters or Filters(), verify is not None, test_prompts,
                         references)
    settings = dedup.read_settings(work)
    for stage in STAGES[:-1]:  # what a Slurm array runs as tasks, here one after the other
        for task in range(task_count(settings, stage)):
            run_task(work, stage, task, verify)
    return finish_merge(work, out_dir, started)


def prepare_merge(shard_dirs: Sequence[str | Path], out_dir: str | Path, filters: Filters, has_verifier: bool,
                  test_prompts: Sequence[str], references: Sequence[str | Path] = ()) -> Path:
    """Check the shards are one complete generation; write the stages' settings and the n-gram index."""
    from distill.generation import dedup
    from distill.generation.contamination import ContaminationIndex

    if filters.verify and not has_verifier:
        raise GenerationError("generation.filters.verify is true but no verifier was given for these prompts")
    stores = [ShardStore.existing(folder) for folder in shard_dirs]
    stores.sort(key=lambda s: s.plan["shard"])
    plan = check_plans(stores)
    check_output_dir(out_dir)
    work = Path(out_dir) / "work"
    decon = ({"ngram": filters.decontaminate_ngram, "test_prompts": len(test_prompts)}
             if filters.decontaminate_ngram else None)
    expected = sum(s.plan["prompts"] for s in stores) * plan["samples_per_prompt"]
    dedup.write_settings(work, [str(s.folder) for s in stores], plan["samples_per_prompt"], expected,
                         **_dedup_settings(filters, decon, references))
    index = work / "contamination.json"
    if decon and test_prompts and not index.exists():
        ContaminationIndex.from_prompts(test_prompts, filters.decontaminate_ngram).save(index)
    return work


def _dedup_settings(filters: Filters, decontaminate: dict | None, references: Sequence[str | Path]) -> dict:
    return {"threshold": filters.near_dedup_threshold, "min_chars": filters.min_chars,
            "max_chars": filters.max_chars, "exact": filters.exact_dedup, "decontaminate": decontaminate,
            "references": [str(r) for r in references], "verify": filters.verify}


def merge_task_counts(filters: Filters, shards: int, references: int = 0) -> dict[str, int]:
    """{stage: task count} of a merge of ``shards`` generation shards (and ``references`` reference
    sources), known before any shard exists (what the Slurm executor submits as arrays); only the
    filters and those counts decide it."""
    from distill.generation import dedup
    from distill.generation.dedup_task import STAGES, task_count

    settings = dedup.make_settings([""] * shards, 1, 0, **_dedup_settings(filters, None, [""] * references))
    return {stage: task_count(settings, stage) for stage in STAGES}


def merge_in_memory(shard_dirs: Sequence[str | Path], filters: Filters, verify: Verifier | None = None,
                    test_prompts: Sequence[str] = ()) -> tuple[list[dict], list[dict] | None, dict]:
    """The earlier merge, every row in one list (``filters.run_filters``; datasketch near-dedup): what
    the streaming stages are compared against in the merge bench and the tests."""
    stores = [ShardStore.existing(folder) for folder in shard_dirs]
    plan = check_plans(stores)
    samples = plan["samples_per_prompt"]
    rows = merged_rows(stores, sum(s.plan["prompts"] for s in stores) * samples, samples)
    return run_filters(rows, filters, test_prompts, verify)


def check_plans(stores: Sequence[ShardStore]) -> dict:
    """The shards must be one generation: same settings, every shard once, every chunk committed."""
    if not stores:
        raise GenerationError("no shard folders to merge")
    first = stores[0].plan
    for store in stores:
        key = next((k for k in sorted(set(first) | set(store.plan)) if k not in PER_SHARD
                    and first.get(k) != store.plan.get(k)), None)
        if key is not None:
            raise GenerationError(f"{store.folder}: {key}={store.plan.get(key)!r} differs from "
                                  f"{first.get(key)!r} in {stores[0].folder}; these shards are not one "
                                  "generation")
        if not store.complete():
            raise GenerationError(f"{store.folder}: shard {store.plan['shard']} of {first['num_shards']} is "
                                  f"incomplete ({len(store.committed())}/{store.num_chunks} chunks); "
                                  "generate it first")
    found = sorted(s.plan["shard"] for s in stores)
    if found != list(range(first["num_shards"])):
        missing = sorted(set(range(first["num_shards"])) - set(found))
        raise GenerationError(f"shard folders hold shards {found} of {first['num_shards']}: "
                              f"missing {missing}, repeated "
                              f"{sorted({s for s in found if found.count(s) > 1})}")
    return first


def merged_rows(stores: Sequence[ShardStore], expected: int, samples: int) -> list[dict]:
    """Source rows from all shards in prompt order; refuses a missing or repeated (prompt, sample)."""
    records = heapq.merge(*(s.records() for s in stores), key=lambda r: (r["pos"], r["sample"]))
    rows, seen = [], set()
    for rec in records:
        key = (rec["id"], rec["sample"])
        if key in seen:
            raise GenerationError(f"prompt {rec['id']!r} sample {rec['sample']} was generated twice")
        seen.add(key)
        rows.append(source_row(rec, samples))
    if len(rows) != expected:
        raise GenerationError(f"merged {len(rows)} rows, expected {expected} (prompts x samples_per_prompt)")
    return rows


def run_generation(prompts: Sequence[dict], teacher: ModelSpec, gen: Generation, out_dir: str | Path, *,
                   verify: Verifier | None = None, test_prompts: Sequence[str] = (),
                   device: str | None = None, progress: bool = True) -> dict:
    """All shards in this process (one backend, loaded once and only if work is left), then the merge."""
    prompts = check_prompts(prompts)
    check_teacher(teacher, gen)
    check_output_dir(out_dir)
    folders = [shard_folder(out_dir, s, gen.shards) for s in range(gen.shards)]
    backend = None
    try:
        for shard, folder in enumerate(folders):
            plan = shard_plan(shard_prompts(prompts, shard, gen.shards), shard, gen.shards, teacher, gen)
            if backend is None and not ShardStore(folder, plan).complete():
                backend = build_backend(teacher, gen, device)
            generate_shard(prompts, teacher, gen, folder, shard, backend=backend, progress=progress)
    finally:
        if backend is not None:
            backend.close()
    return merge_and_filter(folders, out_dir, filters=gen.filters, verify=verify, test_prompts=test_prompts)
