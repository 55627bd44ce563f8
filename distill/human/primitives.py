"""Human-data primitives on teacher drafts: rows of ``edited``, ``first_error`` and ``picked`` sources.

Every row is a source row ``{id, prompt, completion, origin, meta}``; its ``meta`` carries the row's
provenance and cost: ``expert`` (who or what did the work), ``simulated`` (True unless real people
did it), ``action``, ``draft_id`` (the teacher draft it came from), ``human_s`` (expert seconds this
row cost) and, per primitive, ``draft`` (edited: the text before the edit), ``learn_chars``
(first_error: characters of the completion before the first wrong step, absent: no mark, all
learnable; with ``mark_step``, its step number, or ``mark_span``, its characters where labels mark
text) or ``rejected_id`` (picked: the draft not chosen).

Work that yields no row (a pick of neither) still cost seconds: ``Work.discarded_s`` records them,
and the ledger spreads them over the rows that were kept. Pure functions, no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from distill.human.expert import Action, SimulatedExpert, step_offset
from distill.registry import HUMAN_PRIMITIVES

PRIMITIVES = HUMAN_PRIMITIVES.names


@dataclass
class Work:
    """One primitive's output: source rows plus the seconds spent on items that yielded none."""

    primitive: str
    rows: list[dict] = field(default_factory=list)
    discarded_s: float = 0.0
    items: int = 0  # drafts (or pairs) the expert looked at
    # picks of neither whose drafts the expert still ranked: preference pairs only, never SFT rows
    preferences: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        kept = sum(float(r["meta"]["human_s"]) for r in self.rows)
        return {"primitive": self.primitive, "items": self.items, "rows": len(self.rows),
                "human_s": kept + self.discarded_s, "kept_s": kept, "discarded_s": self.discarded_s,
                "preference_only": len(self.preferences)}


def drafts_by_prompt(rows: Sequence[dict], meta_of) -> dict[str, list[dict]]:
    """Teacher rows grouped by prompt id, samples in order, prompts in first-seen order."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        meta = meta_of(row)
        out.setdefault(str(meta.get("prompt_id", row["id"])), []).append(row)
    for group in out.values():
        group.sort(key=lambda r: meta_of(r).get("sample", 0))
    return out


def _meta(base: dict, expert, action: Action, draft_id: str, **extra) -> dict:
    meta = {k: v for k, v in base.items() if k in ("answer", "prompt_id")}
    known = {"expert_erred": action.erred} if isinstance(expert, SimulatedExpert) else {}  # people: unknown
    return {**meta, "expert": expert.name, "simulated": bool(expert.simulated), "action": action.kind,
            "draft_id": draft_id, "human_s": float(action.seconds), **known, **extra}


def edited_row(draft: dict, meta: dict, action: Action, expert) -> dict:
    return {"id": draft["id"], "prompt": draft["prompt"], "completion": action.completion, "origin": "edited",
            "meta": _meta(meta, expert, action, draft["id"], draft=draft["completion"])}


def first_error_row(draft: dict, meta: dict, action: Action, expert, span: tuple[int, int] | None = None) -> dict:
    """``span``: the wrong step's characters, where labels mark text rather than a step number (CHAMP)."""
    if span is not None:
        extra = {"learn_chars": span[0], "mark_span": list(span)}
    elif action.mark is None:
        extra = {}
    else:
        extra = {"learn_chars": step_offset(draft["completion"], action.mark), "mark_step": action.mark}
    return {"id": draft["id"], "prompt": draft["prompt"], "completion": draft["completion"],
            "origin": "first_error", "meta": _meta(meta, expert, action, draft["id"], **extra)}


def picked_row(a: dict, b: dict, meta: dict, action: Action, expert) -> dict | None:
    if action.choice == "neither":
        return None
    chosen, other = (a, b) if action.choice == "a" else (b, a)
    return {"id": chosen["id"], "prompt": chosen["prompt"], "completion": chosen["completion"],
            "origin": "picked", "meta": _meta(meta, expert, action, chosen["id"], rejected_id=other["id"])}


def preference_only_row(a: dict, b: dict, meta: dict, action: Action, expert) -> dict | None:
    """A pick of neither that still ranked its drafts: the less wrong one over the other (pairs only)."""
    if action.choice != "neither" or action.prefer is None or a["completion"] == b["completion"]:
        return None
    better, other = (a, b) if action.prefer == "a" else (b, a)
    return {"id": better["id"], "prompt": better["prompt"], "completion": better["completion"], "origin": "picked",
            "meta": _meta(meta, expert, action, better["id"], rejected_id=other["id"], pair_only=True)}


# Each primitive's row builder, as HUMAN_PRIMITIVES (distill/registry.py) names it:
# (one prompt's drafts, its meta, the expert's action, the expert) -> the row, or None.
def edited(drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict:
    return edited_row(drafts[0], meta, action, expert)


def first_error(drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict:
    return first_error_row(drafts[0], meta, action, expert)


def picked(drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict | None:
    return picked_row(drafts[0], drafts[1], meta, action, expert)


def row_of(primitive: str, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict | None:
    """The row an expert's action on one prompt's drafts makes (None: a pick of neither)."""
    return HUMAN_PRIMITIVES.load(primitive)(drafts, meta, action, expert)


def simulate(primitive: str, groups: dict[str, list[dict]], expert, meta_of, limit: int) -> Work:
    """The simulated (or model) expert's work on the drafts of the first ``limit`` prompts."""
    HUMAN_PRIMITIVES.check(primitive)
    work = Work(primitive)
    for drafts in list(groups.values())[:limit]:
        first = drafts[0]
        meta = meta_of(first)
        if primitive == "picked":
            if len(drafts) < 2:
                raise ValueError(f"prompt {meta.get('prompt_id', first['id'])!r} has {len(drafts)} draft; "
                                 "picks need generation.samples_per_prompt >= 2")
            action = expert.pick(first["id"], first["prompt"], first["completion"], drafts[1]["completion"])
        elif primitive == "edited":
            action = expert.edit(first["id"], first["prompt"], first["completion"])
        else:
            action = expert.mark(first["id"], first["prompt"], first["completion"])
        row = row_of(primitive, drafts, meta, action, expert)
        work.items += 1
        if row is None:
            work.discarded_s += action.seconds
            if primitive == "picked" and (pref := preference_only_row(drafts[0], drafts[1], meta, action, expert)):
                work.preferences.append(pref)
        else:
            work.rows.append(row)
    return work
