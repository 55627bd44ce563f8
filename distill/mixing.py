"""Mix planning: which examples, from which source, in which order, one student trains on.

Pure functions, no I/O. A plan names examples by (source, id); loading them is someone else's job.

Rules (the words: source, human pool H, mix, arm, wall policy are README.md's "Anatomy of a recipe"):
- Split: for synthetic fraction f and size n, the human part is (1 - f) * n rounded half up (on the
  decimal f as written, so 0.15 * 10 is 1.5 -> 2, not a float artefact); the synthetic part is the rest.
- Nesting: each pool is read as a stream: epoch 0 is a seeded permutation of the pool, epoch 1 a
  fresh permutation, and so on. The seed of (seed, pool name, epoch) comes from sha256, and the
  shuffle uses only `random.Random.random()`, whose sequence Python guarantees across versions, so
  plans are identical across processes and machines. Each part is a prefix of its pool's stream,
  hence for fixed (arm, seed) the N=1k selection is a per-source prefix of the N=2k one. The stream
  depends on the pool, not the arm: arms that share a pool and a seed share its prefix too.
- Tokens: a part's budget is filled with whole examples in stream order, taking the shortest prefix
  whose tokens reach the budget. The boundary example is included, so a part overshoots its budget
  by less than one example and never undershoots (unless infeasible); examples are never cut.
- Wall (the human part needs more than the pool holds):
  `repeat` reads further epochs; a part needing more than `max_epochs` epochs is infeasible.
  `fill` takes the whole pool once and tops up with synthetic; the realised f is recorded.
  `stop` makes the point infeasible.
  The synthetic part under `repeat` repeats with the same cap; under `fill` and `stop` running out of
  synthetic data is infeasible (there is no top-up with human data).
  Infeasible plans are returned, not raised (feasible=False, a one-line reason, no entries), so the
  sweep can show them.
- Order: `entries` is the training order, a proportional interleave of the parts: entry i of a part
  with c entries sits at (i + 0.5) / c of the way through training (ties: human part first). The
  local mix is thus f all along training and a repeated pool is read epoch by epoch. The interleaved
  order of N=1k is NOT a prefix of N=2k; the nesting property holds on `source_entries(pool)`.
- Weights: a per-pool loss weight (default 1.0) is copied onto every entry of that pool.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from distill.recipe.schema import Arm, Wall  # the recipe's arm and wall policy
from distill.registry import did_you_mean

Origin = Literal["human", "synthetic"]
Unit = Literal["examples", "tokens"]
_ORIGINS = ("human", "synthetic")
_UNITS = ("examples", "tokens")


@dataclass(frozen=True)
class Pool:
    """A source: example ids and their token counts, in the same order."""

    name: str
    origin: Origin
    ids: tuple[str, ...]
    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.origin not in _ORIGINS:
            raise ValueError(f"pool {self.name!r}: origin {self.origin!r} is not one of {_ORIGINS}")
        if len(self.ids) != len(self.tokens):
            raise ValueError(f"pool {self.name!r}: {len(self.ids)} ids but {len(self.tokens)} token counts")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"pool {self.name!r}: ids are not unique")
        bad = next((t for t in self.tokens if isinstance(t, bool) or not isinstance(t, int) or t < 1), None)
        if bad is not None:
            raise ValueError(f"pool {self.name!r}: token count {bad!r} is not a positive int")

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


@dataclass(frozen=True)
class _Draw:
    """An arm resolved to the pools it reads: its human source unless it is all synthetic, its
    synthetic source when it has a synthetic part or the fill policy may top up with one."""

    name: str
    fraction: float
    human: str | None
    synthetic: str | None


def _draw(arm: Arm, wall: Wall) -> _Draw:
    return _Draw(arm.name, arm.fraction, arm.human if arm.fraction < 1 else None,
                 arm.synthetic if arm.fraction > 0 or wall.policy == "fill" else None)


@dataclass(frozen=True, slots=True)  # a mix may hold a million of them
class Entry:
    source: str
    id: str
    epoch: int  # 0 = first pass over the pool
    weight: float


@dataclass(frozen=True)
class SourceUse:
    """How much of one pool a plan uses. `epochs` counts passes started (a partial pass counts)."""

    pool: str
    role: Origin  # "human" or "synthetic": which part of the arm this pool supplies
    examples: int
    tokens: int
    epochs: int
    weight: float


@dataclass(frozen=True)
class MixPlan:
    arm: str
    seed: int
    n: int
    unit: Unit
    fraction: float  # requested synthetic fraction
    realised_fraction_examples: float | None  # None when infeasible
    realised_fraction_tokens: float | None
    feasible: bool
    reason: str  # "" when feasible
    wall: Wall
    human_pool: str | None
    synthetic_pool: str | None
    entries: tuple[Entry, ...] = field(repr=False)
    sources: tuple[SourceUse, ...]
    content_hash: str  # sha256 over the ordered entries

    @property
    def counts(self) -> dict[str, int]:
        return {s.pool: s.examples for s in self.sources}

    @property
    def tokens(self) -> dict[str, int]:
        return {s.pool: s.tokens for s in self.sources}

    @property
    def epochs(self) -> dict[str, int]:
        return {s.pool: s.epochs for s in self.sources}

    def source_entries(self, pool: str) -> tuple[Entry, ...]:
        """One pool's entries in stream order: the prefix that nesting is defined on."""
        return tuple(e for e in self.entries if e.source == pool)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for meta.json (entries are summarised by count and hash)."""
        return {
            "arm": self.arm, "seed": self.seed, "n": self.n, "unit": self.unit,
            "fraction": self.fraction,
            "realised_fraction": {"examples": self.realised_fraction_examples,
                                  "tokens": self.realised_fraction_tokens},
            "feasible": self.feasible, "reason": self.reason,
            "wall": {"policy": self.wall.policy, "max_epochs": self.wall.max_epochs},
            "pools": {"human": self.human_pool, "synthetic": self.synthetic_pool},
            "sources": [dataclasses.asdict(s) for s in self.sources],
            "n_entries": len(self.entries),
            "content_hash": self.content_hash,
        }


@dataclass(frozen=True)
class _Part:
    pool: Pool
    role: str
    picks: tuple[tuple[int, int], ...]  # (index into pool, epoch), in stream order
    amount: int  # examples or tokens, per the unit
    complete: bool  # reached its target


def plan_mix(arm: Arm, n: int, seed: int, pools: Mapping[str, Pool], *, unit: Unit = "examples",
             wall: Wall, weights: Mapping[str, float] | None = None) -> MixPlan:
    """Plan the training set of one (arm, n, seed) point; see the module docstring for the rules."""
    arm = _draw(arm, wall)
    _check_point(arm, n, seed, unit, pools, weights)
    weights = dict(weights or {})
    human_target = math.floor((1 - Fraction(repr(float(arm.fraction)))) * n + Fraction(1, 2))
    parts: list[_Part] = []
    if arm.human is not None:
        human = _take(pools[arm.human], "human", human_target, seed, unit, _epochs_allowed(wall))
        if not human.complete and wall.policy != "fill":
            return _infeasible(arm, n, seed, unit, wall, _wall_reason(human, human_target, unit, wall))
        parts.append(human)
        if not human.complete:  # fill: the synthetic part takes what the pool could not give
            human_target = human.amount
    synth_target = n - human_target  # > 0 only with a synthetic pool (_draw)
    if arm.synthetic is not None:
        synth = _take(pools[arm.synthetic], "synthetic", synth_target, seed, unit, _epochs_allowed(wall))
        if not synth.complete:
            return _infeasible(arm, n, seed, unit, wall, _wall_reason(synth, synth_target, unit, wall))
        parts.append(synth)
    return _feasible(arm, n, seed, unit, wall, parts, weights)


def _check_point(arm: _Draw, n: int, seed: int, unit: str, pools: Mapping[str, Pool],
                 weights: Mapping[str, float] | None) -> None:
    f = arm.fraction
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1:
        raise ValueError(f"arm {arm.name!r}: fraction {f!r} is outside [0, 1]")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"arm {arm.name!r}: size n={n!r} is not a positive int")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"arm {arm.name!r}: seed {seed!r} is not an int")
    if unit not in _UNITS:
        raise ValueError(f"unit {unit!r} is not one of {_UNITS}")
    for key, pool in pools.items():
        if key != pool.name:
            raise ValueError(f"pools[{key!r}] holds a pool named {pool.name!r}")
    for role, name, needed in (("human", arm.human, f < 1), ("synthetic", arm.synthetic, f > 0)):
        if name is None:
            if needed:
                raise ValueError(f"arm {arm.name!r}: fraction {f} needs a {role} pool but {role}=None")
            continue
        _check_pool_name(name, pools, f"arm {arm.name!r} {role}")
        if pools[name].origin != role:
            raise ValueError(f"arm {arm.name!r}: {role} pool {name!r} has origin {pools[name].origin!r}")
    if arm.human is not None and arm.human == arm.synthetic:
        raise ValueError(f"arm {arm.name!r}: pool {arm.human!r} is both the human and the synthetic pool")
    for name, w in (weights or {}).items():
        _check_pool_name(name, pools, "weights")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
            raise ValueError(f"weights[{name!r}] = {w!r} is not a positive finite number")


def _check_pool_name(name: str, pools: Mapping[str, Pool], where: str) -> None:
    if name not in pools:
        raise ValueError(f"{where}: unknown pool {name!r}{did_you_mean(name, pools)}")


def _epochs_allowed(wall: Wall) -> int:
    return wall.max_epochs if wall.policy == "repeat" else 1


def _take(pool: Pool, role: str, target: int, seed: int, unit: str, epochs: int) -> _Part:
    """The shortest prefix of the pool's stream reaching `target`, reading at most `epochs` passes."""
    picks: list[tuple[int, int]] = []
    got = 0
    for epoch in range(epochs if pool.ids else 0):
        if got >= target:
            break
        perm = _permutation(seed, pool.name, epoch, len(pool.ids))
        if unit == "examples":
            k = min(target - got, len(perm))
            got += k
        else:
            cum = list(itertools.accumulate(pool.tokens[i] for i in perm))
            k = min(bisect.bisect_left(cum, target - got) + 1, len(perm))  # include boundary example
            got += cum[k - 1]
        picks.extend((i, epoch) for i in perm[:k])
    return _Part(pool, role, tuple(picks), got, got >= target)


@functools.lru_cache(maxsize=64)
def _permutation(seed: int, pool: str, epoch: int, size: int) -> tuple[int, ...]:
    """Seeded Fisher-Yates on random(), the one Random method whose sequence Python guarantees."""
    digest = hashlib.sha256(f"distill.mixing:{seed}:{pool}:{epoch}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    order = list(range(size))
    for i in range(size - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return tuple(order)


def _wall_reason(part: _Part, target: int, unit: str, wall: Wall) -> str:
    pool = part.pool
    size = len(pool.ids) if unit == "examples" else pool.total_tokens
    cap = "more than one pass"
    if wall.policy == "repeat":
        cap = f"more than max_epochs={wall.max_epochs} epochs"
    return (f"{part.role} pool {pool.name!r} holds {size} {unit}; the {part.role} part needs {target}, "
            f"{cap} (wall policy {wall.policy!r})")


def _infeasible(arm: _Draw, n: int, seed: int, unit: str, wall: Wall, reason: str) -> MixPlan:
    return MixPlan(arm.name, seed, n, unit, float(arm.fraction), None, None, False, reason, wall,
                   arm.human, arm.synthetic, (), (), _hash_entries(()))


def _feasible(arm: _Draw, n: int, seed: int, unit: str, wall: Wall, parts: list[_Part],
              weights: Mapping[str, float]) -> MixPlan:
    per_part: list[list[Entry]] = []
    uses: list[SourceUse] = []
    count = {"human": 0, "synthetic": 0}
    toks = {"human": 0, "synthetic": 0}
    for part in parts:
        pool, w = part.pool, float(weights.get(part.pool.name, 1.0))
        per_part.append([Entry(pool.name, pool.ids[i], e, w) for i, e in part.picks])
        used_tokens = sum(pool.tokens[i] for i, _ in part.picks)
        epochs = 1 + max((e for _, e in part.picks), default=-1)
        uses.append(SourceUse(pool.name, part.role, len(part.picks), used_tokens, epochs, w))
        count[part.role] += len(part.picks)
        toks[part.role] += used_tokens
    entries = _interleave(per_part)
    return MixPlan(arm.name, seed, n, unit, float(arm.fraction),
                   count["synthetic"] / sum(count.values()), toks["synthetic"] / sum(toks.values()),
                   True, "", wall, arm.human, arm.synthetic, entries, tuple(uses), _hash_entries(entries))


def _interleave(parts: list[list[Entry]]) -> tuple[Entry, ...]:
    """Entry i of a part with c entries goes at (i + 0.5) / c of the way through; ties by part order.

    Sorted as arrays (the same float64 positions a list of tuples would hold), so a mix of a million
    entries holds no million keys as Python objects."""
    parts = [p for p in parts if p]
    if not parts:
        return ()
    index = [np.arange(len(p), dtype=np.int64) for p in parts]
    position = np.concatenate([(i + 0.5) / len(i) for i in index])
    rank = np.concatenate([np.full(len(p), r, dtype=np.int64) for r, p in enumerate(parts)])
    order = np.lexsort((np.concatenate(index), rank, position))  # last key first: position, rank, i
    flat = [e for p in parts for e in p]
    return tuple(flat[k] for k in order.tolist())


def _hash_entries(entries: tuple[Entry, ...]) -> str:
    """sha256 over one ``json.dumps([source, id, epoch, weight])`` line per entry (written without
    json.dumps where the bytes are known to be the same: a million entries hash in seconds)."""
    h = hashlib.sha256()
    lines = []
    for e in entries:
        lines.append(f"[{_json_str(e.source)}, {_json_str(e.id)}, {e.epoch}, {_json_float(e.weight)}]\n")
        if len(lines) == 4096:
            h.update("".join(lines).encode())
            lines.clear()
    h.update("".join(lines).encode())
    return h.hexdigest()


_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': json.dumps adds only the quotes


def _json_str(text: str) -> str:
    return f'"{text}"' if _PLAIN.fullmatch(text) else json.dumps(text)


def _json_float(value: float) -> str:
    return repr(value) if type(value) is float and math.isfinite(value) else json.dumps(value)
