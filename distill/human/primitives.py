"""Human-effort primitives: what a primitive declares (``Primitive``), and the work that runs any of them.

A primitive is one kind of expert work on teacher drafts. Each is one module (``edited.py``,
``first_error.py``, ``picked.py`` here) holding a ``Primitive`` as ``PRIMITIVE``, and one line in
``distill/registry.py``'s ``HUMAN_PRIMITIVES``; nothing else lists primitives. The object says all the
rest of distill asks of it: what an expert is shown and which ``experts.times`` prices it, the
simulated expert's action and the row an action makes, its Label Studio and Argilla question, the
model expert's prompt and how a reply reads, and which draft a preference pair sets against its row.

Every row is a source row ``{id, prompt, completion, origin, meta}``; its ``meta`` carries the row's
provenance and cost: ``expert`` (who or what did the work), ``simulated`` (True unless real people
did it), ``action``, ``draft_id`` (the teacher draft it came from), ``human_s`` (expert seconds this
row cost) and what the primitive adds (its module says). Work that yields no row (a pick of neither)
still cost seconds: ``Work.discarded_s`` records them, and the ledger spreads them over the rows that
were kept. Pure functions, no I/O.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill.human.expert import Action, SimulatedExpert
from distill.registry import HUMAN_PRIMITIVES

PRIMITIVES = HUMAN_PRIMITIVES.names


class Primitive:
    """One kind of expert work. A subclass sets the names and overrides the methods it needs."""

    name: str
    shows = 1  # drafts of one prompt an expert sees (a pick: two)
    time = "mark_s"  # the experts.times field one item costs
    question = ""  # the Label Studio / Argilla question the expert answers
    label_config = ""  # the question's Label Studio XML (the prompt and draft are shown above it)
    prompt = ""  # the model expert's prompt: fields prompt, answer, draft, draft_b, steps
    pair_key: str | None = None  # meta key of the draft a preference pair rejects; None: no pairs

    def simulate(self, expert: SimulatedExpert, drafts: Sequence[dict]) -> Action:
        """The simulated expert's action on the drafts shown."""
        raise NotImplementedError

    def row(self, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict | None:
        """The source row an action makes (None: work that keeps no row)."""
        raise NotImplementedError

    def leftover(self, drafts: Sequence[dict], meta: dict, action: Action, expert) -> dict | None:
        """A preference kept from work that made no row (a ranked pick of neither)."""
        return None

    def fields(self, task) -> dict[str, str]:
        """What the annotation tools show besides the prompt, the draft and its numbered steps."""
        return {}

    def suggestion(self, task) -> str | None:
        """Text the tools pre-fill the question with (an edit starts from the draft)."""
        return None

    def label_studio_action(self, result: Callable[[str, str], dict], task, seconds: float, where) -> Action:
        """The action of a Label Studio annotation: ``result(name, type)`` is a region's value."""
        raise NotImplementedError

    def argilla_question(self, tasks: Sequence) -> dict:
        raise NotImplementedError

    def argilla_action(self, value: Any, task, seconds: float, where) -> Action:
        """The action of an Argilla response's value."""
        raise NotImplementedError

    def read_reply(self, text: str, task, seconds: float) -> Action | None:
        """The model expert's action, or None when its reply cannot be read."""
        raise NotImplementedError


def primitive_of(name: str) -> Primitive:
    return HUMAN_PRIMITIVES.load(name)


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

    def add(self, row: dict | None, seconds: float) -> None:
        """One item's outcome: its row, or its seconds spent for nothing kept."""
        self.items += 1
        if row is None:
            self.discarded_s += seconds
        else:
            self.rows.append(row)


def drafts_by_prompt(rows: Sequence[dict], meta_of) -> dict[str, list[dict]]:
    """Teacher rows grouped by prompt id, samples in order, prompts in first-seen order."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        meta = meta_of(row)
        out.setdefault(str(meta.get("prompt_id", row["id"])), []).append(row)
    for group in out.values():
        group.sort(key=lambda r: meta_of(r).get("sample", 0))
    return out


def row_meta(base: dict, expert, action: Action, draft_id: str, **extra) -> dict:
    """A worked row's provenance and cost (the module docstring lists the keys)."""
    meta = {k: v for k, v in base.items() if k in ("answer", "prompt_id")}
    known = {"expert_erred": action.erred} if isinstance(expert, SimulatedExpert) else {}  # people: unknown
    return {**meta, "expert": expert.name, "simulated": bool(expert.simulated), "action": action.kind,
            "draft_id": draft_id, "human_s": float(action.seconds), **known, **extra}


def simulate(primitive: str, groups: dict[str, list[dict]], expert, meta_of, limit: int) -> Work:
    """The simulated (or model) expert's work on the drafts of the first ``limit`` prompts."""
    kind = primitive_of(primitive)
    work = Work(primitive)
    for drafts in list(groups.values())[:limit]:
        meta = meta_of(drafts[0])
        if len(drafts) < kind.shows:
            raise ValueError(f"prompt {meta.get('prompt_id', drafts[0]['id'])!r} has {len(drafts)} draft; "
                             f"{primitive} needs generation.samples_per_prompt >= {kind.shows}")
        action = kind.simulate(expert, drafts)
        row = kind.row(drafts, meta, action, expert)
        work.add(row, action.seconds)
        if row is None and (kept := kind.leftover(drafts, meta, action, expert)):
            work.preferences.append(kept)
    return work
