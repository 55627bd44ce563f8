"""A generation without a teacher: GSM8K-like rows written as real shard folders, with planted copies.

For the merge bench (``bench/merge.py``) and the dedup tests: rows are word problems of about 600
characters (prompt + chain of thought) from a few templates with random names, items and numbers.
Some rows are planted copies of a recent earlier row: exact copies, near copies (``k`` words of the
prompt or completion replaced, numbers untouched, so their Jaccard spreads from ~1 down to ~0.5) and
number variants (one number changed: never a duplicate under distill's rules). Streamed: memory does
not grow with the row count.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from distill.generation.shards import ShardStore, shard_folder, shard_of

NAMES = ["Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemi", "Liam"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "shells", "coins", "cards", "eggs"]
FILLER = ["then", "after", "that", "she", "also", "he", "later", "first", "next", "finally", "each", "every",
          "some", "more", "fewer", "than", "the", "a", "of", "to", "and", "in", "at", "for", "with", "from",
          "by", "on", "store", "market", "school", "garden", "week", "day", "morning", "evening", "friend",
          "family", "box", "bag", "shelf", "table", "basket", "jar"]
TEMPLATES = [
    (("{a} has {x} {i}. {b} gives {a} {y} more {i} every day for {d} days, and then {a} sells {z} of them "
     "at the market on the weekend. {a} wants to share what is left equally with {k} friends."),
     ("Each day {a} gets {y} {i}, so over {d} days that is {y} * {d} = {yd} {i}. Together with the {x} at "
     "the start, {a} has {x} + {yd} = {s1} {i}. After selling {z}, {a} has {s1} - {z} = {s2} {i} left.")),
    (("A shop packs {i} into boxes of {y}. On Monday it receives {x} {i} and on Tuesday {z} more, while "
     "{d} boxes from last week are still on the shelf. {a} and {b} must count everything by closing."),
     ("On the shelf there are {d} boxes of {y}, that is {d} * {y} = {yd} {i}. The shop received {x} + "
     "{z} = {xz} {i} this week. In total it holds {yd} + {xz} = {s3} {i}, counted by {a} and {b}.")),
]
_NUMBER = re.compile(r"\d+")


def _problem(rng: random.Random) -> tuple[str, str]:
    x, y, z, d, k = (rng.randint(2, 999) for _ in range(5))
    a, b = rng.sample(NAMES, 2)
    v = {"a": a, "b": b, "i": rng.choice(ITEMS), "x": x, "y": y, "z": z, "d": d, "k": k, "yd": y * d,
         "s1": x + y * d, "s2": x + y * d - z, "xz": x + z, "s3": y * d + x + z}
    prompt, completion = (t.format(**v) for t in rng.choice(TEMPLATES))
    filler = " ".join(rng.choices(FILLER, k=rng.randint(30, 50)))  # row-specific wording
    return prompt + " " + " ".join(rng.choices(FILLER, k=12)), f"{completion} {filler} #### {x}"


def _replace_words(text: str, k: int, rng: random.Random) -> str:
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if not _NUMBER.search(w)]
    for i in rng.sample(spots, min(k, len(spots))):
        words[i] = rng.choice(FILLER) + rng.choice("xyzq")
    return " ".join(words)


def _bump_number(text: str, rng: random.Random) -> str:
    found = list(_NUMBER.finditer(text))
    m = rng.choice(found)
    return text[:m.start()] + str(int(m.group()) + 1) + text[m.end():]


def rows(n: int, seed: int = 0, exact: float = 0.01, near: float = 0.03, numbers: float = 0.01,
         max_words: int = 40) -> Iterator[tuple[str, str, str]]:
    """``(kind, prompt, completion)`` for ``n`` rows; kind is ``fresh``, ``exact``, ``near`` or
    ``numbers``."""
    rng, recent = random.Random(seed), []
    for _ in range(n):
        draw = rng.random()
        if recent and draw < exact + near + numbers:
            prompt, completion = rng.choice(recent)
            if draw < exact:
                kind = "exact"
            elif draw < exact + near:
                kind, k = "near", rng.randint(1, max_words)
                prompt, completion = (_replace_words(prompt, k // 3, rng),
                                      _replace_words(completion, k - k // 3, rng))
            else:
                kind, completion = "numbers", _bump_number(completion, rng)
        else:
            kind, (prompt, completion) = "fresh", _problem(rng)
            recent = (recent + [(prompt, completion)])[-500:]
        yield kind, prompt, completion


def write_generation(folder: str | Path, n: int, shards: int = 8, seed: int = 0, chunk_size: int = 4096,
                     given: Sequence[tuple[str, str]] = (), **plants: float) -> list[Path]:
    """Write ``n`` rows (one sample per prompt) as ``shards`` complete shard folders; return them.

    ``given``: these ``(prompt, completion)`` rows instead of generated ones (``n`` is their count)."""
    n = len(given) or n
    ids = [f"p{pos:09d}" for pos in range(n)] if n <= 2_000_000 else None
    # shards < 256
    owner = bytearray(shard_of(ids[pos] if ids else f"p{pos:09d}", shards) for pos in range(n))
    counts = [owner.count(s) for s in range(shards)]
    stores = [ShardStore(shard_folder(folder, s, shards), _plan(s, shards, counts[s], chunk_size))
              for s in range(shards)]
    buffers: list[list[dict]] = [[] for _ in range(shards)]
    chunks = [0] * shards
    source = (("given", p, c) for p, c in given) if given else rows(n, seed, **plants)
    for pos, (kind, prompt, completion) in enumerate(source):
        pid, s = ids[pos] if ids else f"p{pos:09d}", owner[pos]
        buffers[s].append({"pos": pos, "id": pid, "sample": 0, "seed": seed, "prompt": prompt,
                           "meta": {"planted": kind}, "completion": completion, "finish_reason": "stop",
                           "n_tokens": len(completion) // 4, "prompt_tokens": len(prompt) // 4})
        if len(buffers[s]) == chunk_size:
            _commit(stores[s], chunks, s, buffers[s])
            buffers[s] = []
    for s in range(shards):
        if buffers[s]:
            _commit(stores[s], chunks, s, buffers[s])
    return [store.folder for store in stores]


def _commit(store: ShardStore, chunks: list[int], shard: int, records: list[dict]) -> None:
    store.commit(chunks[shard], records, {"prompts": len(records), "wall_s": 1.0, "prompt_tokens": 0,
                                          "completion_tokens": sum(r["n_tokens"] for r in records),
                                          "backend": {"name": "workload"}})
    chunks[shard] += 1


def _plan(shard: int, shards: int, prompts: int, chunk_size: int) -> dict:
    """A shard plan as ``pipeline.shard_plan`` writes it, for a teacher that is not there."""
    return {"version": 1, "shard": shard, "num_shards": shards, "chunk_size": chunk_size,
            "num_chunks": -(-prompts // chunk_size), "prompts": prompts, "prompts_hash": "workload",
            "backend": "hf", "teacher": {"model": "workload", "revision": None, "dtype": "float32",
                                         "trust_remote_code": False},
            "served_model": None, "sampling": {"max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0,
                                               "logprobs_topk": 0},
            "samples_per_prompt": 1, "seed": 0}
