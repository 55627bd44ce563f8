"""Exact and near dedup of a generation as resumable stages over a work folder, each an array task.

1. ``signature_stage(work, s)`` (one task per generation shard): streams shard ``s`` and writes per row
   its global index ``g`` (prompt position x samples + sample: prompt order), whether it passes the
   length filter, its content digest, its numbers digest, its MinHash and one LSH key per band.
2. ``candidate_stage(work, t)`` (one task per exact-hash prefix, then one per band): rows sharing a
   content digest (exact duplicates), or a band key, confirmed on the full signature (estimated
   Jaccard >= threshold, same numbers): the pairs ``(i, j)``, ``i < j``.
3. ``cluster_stage(work)`` (one small task): exact duplicates go first (the first in prompt order
   stays); then, in prompt order, a row is a near duplicate when it pairs with an earlier row that
   was kept (today's greedy rule). Writes one code per row (0 kept, 1 length, 2 exact, 3 near).

Every output is written to a temp name and renamed, and a stage's done-marker is written last, so a
task killed at any moment reruns from scratch and writes the same bytes. Reference rows (the human
pool, earlier generations) get negative indices: they come first, are always kept, and remove the
generated rows that duplicate them without being published themselves.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from distill.artifacts import atomic_write_json
from distill.generation.errors import GenerationError
from distill.generation.minhash import (
    NUM_BINS,
    band_keys,
    banding,
    content_digest,
    estimated_jaccard,
    exact_jaccard,
    example_text,
    numbers_digest,
    signatures,
)
from distill.generation.shards import ShardStore

BATCH = 8192
GROUP_CAP = 256  # a bucket larger than this compares each row with its first GROUP_CAP rows only
MARGIN = 0.08  # about 4 standard deviations of the 256-bin estimate: closer calls are checked exactly
KEPT, LENGTH, EXACT, NEAR, CONTAMINATED = 0, 1, 2, 3, 4


def read_settings(work: Path) -> dict:
    return json.loads((Path(work) / "settings.json").read_text())


def _sig_dir(work: Path, part: str) -> Path:
    return Path(work) / "signatures" / part


def _parts(settings: dict) -> list[str]:
    return [*(f"reference-{i:03d}" for i in range(len(settings["references"]))),
            *(f"shard-{s:05d}" for s in range(len(settings["shards"])))]


def shard_rows(folder: str, samples: int) -> Iterable[tuple[int, int, dict]]:
    """``(g, location, record)`` for a generation shard's records, in prompt order."""
    for location, rec in ShardStore.existing(folder).located_records():
        yield rec["pos"] * samples + rec["sample"], location, rec


def reference_rows(path: str, index: int) -> Iterable[tuple[int, int, dict]]:
    """Rows of a published source (the human pool): negative indices, so they sort before every
    generated row (reference ``index`` holds ``-(index + 1) * 2**40 + k``)."""
    from distill.sources import load_source

    for k, row in enumerate(load_source(path)):
        yield -(index + 1) * 2**40 + k, k, row


def signature_stage(work: Path, part: str) -> None:
    """Signatures, digests and band keys of one part (a generation shard or a reference source)."""
    settings, out = read_settings(work), _sig_dir(work, part)
    if (out / "done.json").exists():
        return
    kind, index = part.rsplit("-", 1)
    rows = (shard_rows(settings["shards"][int(index)], settings["samples"]) if kind == "shard"
            else reference_rows(settings["references"][int(index)], int(index)))
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = ["g.i8", "loc.u8", "ok.u1", "digest.u8", "numbers.u8", "sig.u4",
             *(f"band-{b:03d}.u8" for b in range(settings["bands"]))]
    count = 0
    with contextlib.ExitStack() as files:
        handles = {name: files.enter_context(open(tmp / name, "wb")) for name in names}
        batch: list[tuple[int, int, dict]] = []
        for item in rows:
            batch.append(item)
            if len(batch) == BATCH:
                count += _write_batch(batch, settings, handles, reference=kind != "shard")
                batch = []
        count += _write_batch(batch, settings, handles, reference=kind != "shard")
    atomic_write_json(tmp / "done.json", {"rows": count})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def _write_batch(batch: list[tuple[int, int, dict]], settings: dict, handles: dict, reference: bool) -> int:
    if not batch:
        return 0
    lo, hi = settings["min_chars"], settings["max_chars"]
    recs = [r for _, _, r in batch]
    g = np.fromiter((i for i, _, _ in batch), np.int64, len(batch))
    loc = np.fromiter((at for _, at, _ in batch), np.uint64, len(batch))
    ok = np.fromiter((reference or lo <= len(r["completion"]) <= hi for r in recs), np.uint8, len(batch))
    texts = [example_text(r) for r in recs]
    digest = np.fromiter((content_digest(r["prompt"], r["completion"]) for r in recs), np.uint64, len(batch))
    numbers = np.fromiter((numbers_digest(t) for t in texts), np.uint64, len(batch))
    sig = signatures(texts, settings["bins"])
    keys = band_keys(sig, numbers, settings["bands"], settings["rows"])
    for name, arr in (("g.i8", g), ("loc.u8", loc), ("ok.u1", ok), ("digest.u8", digest),
                      ("numbers.u8", numbers),
                      ("sig.u4", sig)):
        handles[name].write(arr.tobytes())
    for b in range(settings["bands"]):
        handles[f"band-{b:03d}.u8"].write(keys[b].tobytes())
    return len(batch)


_DTYPES = {"i8": np.int64, "u1": np.uint8, "u8": np.uint64, "u4": np.uint32}


def _load(work: Path, name: str, settings: dict) -> np.ndarray:
    """One column of every part, concatenated (references first, then shards in order)."""
    dtype = _DTYPES[name.rsplit(".", 1)[1]]
    return np.concatenate([np.fromfile(_sig_dir(work, p) / name, dtype) for p in _parts(settings)])


def candidate_tasks(settings: dict) -> int:
    return settings["exact_partitions"] + -(-settings["bands"] // settings["bands_per_task"])


def candidate_stage(work: Path, task: int) -> None:
    """Task ``t < P`` (exact partitions): exact duplicates whose digest is ``t`` mod P; a later task:
    its range of ``bands_per_task`` bands."""
    settings = read_settings(work)
    out = Path(work) / "candidates" / f"task-{task:04d}.npy"
    if out.exists():
        return
    g, ok = _load(work, "g.i8", settings), _load(work, "ok.u1", settings).astype(bool)
    if task < settings["exact_partitions"]:
        digest = _load(work, "digest.u8", settings)
        mine = ok & (digest % np.uint64(settings["exact_partitions"]) == task)
        pairs = _equal_key_pairs(digest[mine], g[mine])
    else:
        first = (task - settings["exact_partitions"]) * settings["bands_per_task"]
        pairs = np.concatenate([np.zeros((0, 2), np.int64), *(
            _confirmed_band_pairs(work, settings, band, g, ok)
            for band in range(first, min(first + settings["bands_per_task"], settings["bands"])))])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.npy")
    np.save(tmp, pairs)
    tmp.rename(out)


def _groups(keys: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, starts, sizes): ``order[s:s + n]`` are the positions (into ``keys``) of one key shared
    by ``n >= 2`` rows, sorted by ``g``. One unstable argsort of all keys (a lexsort of all rows cost
    ~5x more), then the few rows whose key repeats are sorted by (key, g)."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    repeat = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    shared = np.zeros(len(keys), bool)
    shared[repeat] = shared[repeat + 1] = True
    order = order[shared]
    order = order[np.lexsort((g[order], keys[order]))]
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))[:len(order)]
    return order, starts, np.diff(np.concatenate((starts, [len(order)])))


def _equal_key_pairs(keys: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(first, other) pairs of equal keys: exact duplicates need no comparison among themselves."""
    order, starts, sizes = _groups(keys, g)
    first = np.repeat(order[starts], sizes - 1)
    done_before = np.repeat(np.cumsum(sizes - 1) - (sizes - 1), sizes - 1)
    others = order[np.arange(len(first)) - done_before + np.repeat(starts + 1, sizes - 1)]
    return np.stack([g[first], g[others]], 1)


def _pairs_in_groups(order: np.ndarray, starts: np.ndarray,
                     sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (earlier, later) inside each group; a group over GROUP_CAP pairs its first
    GROUP_CAP rows with all the others only. Groups of two (most of them) in one vectorised step."""
    two = sizes == 2
    first, second = [order[starts[two]]], [order[starts[two] + 1]]
    for s, n in zip(starts[~two], sizes[~two]):
        heads = np.arange(min(n, GROUP_CAP))
        i = np.repeat(heads, n - 1 - heads)
        j = np.concatenate([np.arange(h + 1, n) for h in heads])
        first.append(order[s + i])
        second.append(order[s + j])
    return np.concatenate(first), np.concatenate(second)


def _confirmed_band_pairs(work: Path, settings: dict, band: int, g: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Pairs sharing this band's key (and no earlier band's: each pair is checked by one task only)
    whose similarity reaches the threshold: on the signature's estimate, and on the exact shingle
    Jaccard where the estimate is within ``MARGIN`` of the threshold."""
    rows = np.flatnonzero(ok)
    keys = _load(work, f"band-{band:03d}.u8", settings)
    order, starts, sizes = _groups(keys[rows], g[rows])
    a, b = (rows[x] for x in _pairs_in_groups(order, starts, sizes))
    # pairs are few: their columns are gathered from the files (whole columns are 8 bytes a row each)
    bounds = _bounds(work, settings)
    for column in ("numbers.u8", *(f"band-{earlier:03d}.u8" for earlier in range(band))):
        differ = _gather(work, settings, a, column, bounds) != _gather(work, settings, b, column, bounds)
        a, b = (a[differ], b[differ]) if column != "numbers.u8" else (a[~differ], b[~differ])
    est = _estimates(work, settings, a, b, bounds)
    unsure = np.flatnonzero(np.abs(est - settings["threshold"]) < MARGIN)
    keep = est >= settings["threshold"]
    text = _text_reader(work, settings)
    for k in unsure:
        keep[k] = exact_jaccard(text(a[k]), text(b[k])) >= settings["threshold"]
    return np.stack([g[a[keep]], g[b[keep]]], 1)


def _estimates(work: Path, settings: dict, a: np.ndarray, b: np.ndarray, bounds: np.ndarray,
               chunk: int = 1 << 16) -> np.ndarray:
    """The estimated Jaccard of each pair, its signatures read ``chunk`` pairs at a time."""
    est = np.zeros(len(a))
    for lo in range(0, len(a), chunk):
        est[lo:lo + chunk] = estimated_jaccard(_gather(work, settings, a[lo:lo + chunk], bounds=bounds),
                                               _gather(work, settings, b[lo:lo + chunk], bounds=bounds))
    return est


def _bounds(work: Path, settings: dict) -> np.ndarray:
    """Global position of each part's first row, and the total."""
    return np.cumsum([0, *(json.loads((_sig_dir(work, p) / "done.json").read_text())["rows"]
                           for p in _parts(settings))])


def _text_reader(work: Path, settings: dict):
    """A row's example text by global position, read back from its shard (or reference) by location."""
    from distill.sources import load_source

    parts, bounds, loc = _parts(settings), _bounds(work, settings), _load(work, "loc.u8", settings)
    opened: dict[int, object] = {}

    def read(position: int) -> str:
        p = int(np.searchsorted(bounds, position, side="right") - 1)
        kind, index = parts[p].rsplit("-", 1)
        if p not in opened:
            opened[p] = (ShardStore.existing(settings["shards"][int(index)]) if kind == "shard"
                         else load_source(settings["references"][int(index)]))
        source = opened[p]
        at = int(loc[position])
        return example_text(source.record_at(at) if kind == "shard" else source[at])

    return read


def _gather(work: Path, settings: dict, positions: np.ndarray, column: str = "sig.u4",
            bounds: np.ndarray | None = None) -> np.ndarray:
    """Rows of a column (the signatures by default) at global positions, read from the per-part files
    without loading them whole (``bounds``: ``_bounds``, if the caller has them)."""
    bounds = _bounds(work, settings) if bounds is None else bounds
    dtype = _DTYPES[column.rsplit(".", 1)[1]]
    width = (settings["bins"],) if column == "sig.u4" else ()
    out = np.empty((len(positions), *width), dtype)
    part = np.searchsorted(bounds, positions, side="right") - 1
    for p, name in enumerate(_parts(settings)):
        mine = np.flatnonzero(part == p)
        if len(mine):
            n = int(bounds[p + 1] - bounds[p])
            values = np.memmap(_sig_dir(work, name) / column, dtype, "r", shape=(n, *width))
            out[mine] = values[positions[mine] - bounds[p]]
    return out


def cluster_stage(work: Path) -> dict:
    """One code per generated row (prompt order) and the near-dedup report; writes ``codes.u1``."""
    settings = read_settings(work)
    out = Path(work) / "codes.u1"
    if (Path(work) / "cluster.json").exists():
        return json.loads((Path(work) / "cluster.json").read_text())
    g, ok = _load(work, "g.i8", settings), _load(work, "ok.u1", settings).astype(bool)
    total = settings["rows_expected"]
    mine = g >= 0
    seen = np.bincount(g[mine], minlength=total)
    if len(seen) != total or (seen != 1).any():
        bad = int(np.flatnonzero(seen != 1)[0]) if len(seen) == total else total
        raise GenerationError(f"rows of the generation do not cover prompt x sample once each "
                              f"(first problem at row index {bad}); regenerate the shard that holds it")
    codes = np.full(total, KEPT, np.uint8)
    codes[g[mine & ~ok]] = LENGTH
    found = [np.load(Path(work) / "candidates" / f"task-{t:04d}.npy")
             for t in range(candidate_tasks(settings))]
    exact = np.concatenate([np.zeros((0, 2), np.int64), *found[:settings["exact_partitions"]]])
    codes[exact[exact[:, 1] >= 0, 1]] = EXACT  # the later copy; references (g < 0) are never removed
    near = np.concatenate([np.zeros((0, 2), np.int64), *found[settings["exact_partitions"]:]])
    near = near[near[:, 1] >= 0]
    report, near_by_reference = _greedy_near(near, codes, settings)
    if settings["references"]:  # what the reference sources (human pool, earlier generations) removed
        copied = exact[(exact[:, 0] < 0) & (exact[:, 1] >= 0), 1]
        report["references"] = {"sources": len(settings["references"]), "rows": int((~mine).sum()),
                                "exact_removed": int(np.unique(copied).size),
                                "near_removed": near_by_reference}
    tmp = out.with_name(".codes.tmp")
    codes.tofile(tmp)
    tmp.rename(out)
    atomic_write_json(Path(work) / "cluster.json", report)
    return report


def _greedy_near(pairs: np.ndarray, codes: np.ndarray, settings: dict) -> tuple[dict, int]:
    """In prompt order, a row pairing with an earlier kept row is a near duplicate of the first such row.
    Returns the near-dedup report and how many rows a reference row (g < 0) removed."""
    if len(pairs):
        pairs = np.unique(pairs, axis=0)
        pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]
    removed_by: dict[int, int] = {}
    for i, j in pairs.tolist():
        if codes[j] != KEPT or (i >= 0 and codes[i] != KEPT):  # a removed j is no longer KEPT
            continue
        removed_by[j] = i
        codes[j] = NEAR
    members: dict[int, list[int]] = {}
    for j, i in removed_by.items():
        members.setdefault(i, []).append(j)
    largest = sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:5]
    bands, rows = settings["bands"], settings["rows"]
    from distill.generation.minhash import candidate_probability

    report = {"threshold": settings["threshold"], "bins": settings["bins"], "bands": bands,
              "rows_per_band": rows,
              "p_candidate": {str(j): round(float(candidate_probability(j, bands, rows)), 4)
                              for j in (0.5, 0.7, 0.8, 0.9)},
              "largest_clusters": [{"kept": k, "removed": len(v), "example_removed": min(v)}
                                   for k, v in largest],
              "example_rows": sorted({g for k, v in largest for g in (k, min(v))})}
    return report, sum(len(v) for k, v in members.items() if k < 0)


def write_settings(work: Path, shards: list[str], samples: int, rows_expected: int, **options) -> dict:
    """Write the stages' shared settings (``settings.json``, from ``make_settings``); a work folder made
    with other settings is cleared first (nothing in it is reusable)."""
    settings = make_settings(shards, samples, rows_expected, **options)
    path = Path(work) / "settings.json"
    if path.exists() and json.loads(path.read_text()) != settings:
        shutil.rmtree(work)
    if not path.exists():
        atomic_write_json(path, settings)
    return settings


def make_settings(shards: Sequence[str], samples: int, rows_expected: int, *, threshold: float | None,
                  min_chars: int, max_chars: int, exact: bool = True, decontaminate: dict | None = None,
                  references: Sequence[str] = (), verify: bool = False, exact_partitions: int = 2,
                  bands_per_task: int = 7) -> dict:
    """The stages' shared settings, a pure function of them: what ``dedup_task.task_count`` reads, so
    the Slurm executor knows each stage's task count before any shard exists."""
    bands, rows = banding(threshold) if threshold is not None else (0, 0)
    steps = ["length", *(["exact_dedup"] if exact else []),
             *(["near_dedup"] if threshold is not None else []),
             *(["decontaminate"] if decontaminate else [])]
    return {"version": 1, "shards": [str(s) for s in shards], "references": [str(r) for r in references],
            "samples": samples, "rows_expected": rows_expected, "threshold": threshold, "bins": NUM_BINS,
            "bands": bands, "rows": rows, "min_chars": min_chars, "max_chars": max_chars,
            "exact_partitions": exact_partitions if exact else 0, "steps": steps,
            "bands_per_task": bands_per_task,
            "decontaminate": decontaminate, "verify": verify}
