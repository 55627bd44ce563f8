"""Prompt rows for the teacher: ``{id, prompt, meta?}``, from a task.

Every problem is reported as one line naming the row index, so a bad row is found without reading a
traceback.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from distill.generation.errors import GenerationError
from distill.registry import did_you_mean

KEYS = ("id", "prompt", "meta")
# Prompts are sent to the teacher verbatim; the template is recorded so that provenance changes the
# day a template (e.g. a chat template) is applied.
PROMPT_TEMPLATE = "{prompt}"


def _validated(items: Iterable[tuple[str, str, object]], empty: str) -> list[dict]:
    """``check_row`` over each item, refusing a repeated id; ``empty`` is the error for no rows."""
    rows: list[dict] = []
    first: dict[str, str] = {}
    for where, name, obj in items:
        row = check_row(obj, where)
        if row["id"] in first:
            raise GenerationError(f"{where}: duplicate id {row['id']!r} (first {first[row['id']]})")
        first[row["id"]] = name
        rows.append(row)
    if not rows:
        raise GenerationError(empty)
    return rows


def check_row(obj: object, where: str) -> dict:
    """Validate one prompt row and return it normalised (id as a string, meta a dict)."""
    if not isinstance(obj, dict):
        raise GenerationError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(KEYS))
    if unknown:
        raise GenerationError(f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], KEYS)}")
    for key in ("id", "prompt"):
        if key not in obj:
            raise GenerationError(f"{where}: missing key {key!r}")
    pid, prompt, meta = obj["id"], obj["prompt"], obj.get("meta") or {}
    if isinstance(pid, bool) or not isinstance(pid, (str, int)) or str(pid) == "":
        raise GenerationError(f"{where}: 'id' must be a non-empty string or an integer, got {pid!r}")
    if not isinstance(prompt, str) or not prompt:
        raise GenerationError(f"{where}: 'prompt' must be a non-empty string, got {prompt!r:.60}")
    if not isinstance(meta, dict):
        raise GenerationError(f"{where}: 'meta' must be an object, got {type(meta).__name__}")
    return {"id": str(pid), "prompt": prompt, "meta": meta}


def check_prompts(rows: Iterable[dict], origin: str = "prompts") -> list[dict]:
    """Validate prompt rows built in code (e.g. ``Task.prompts(n)``); errors name the row index."""
    return _validated(((f"{origin}[{i}]", f"at [{i}]", obj) for i, obj in enumerate(rows)),
                      f"{origin}: no prompts")


def prompts_hash(rows: Sequence[dict]) -> str:
    """Order-sensitive hash of the prompts (ids, texts and metas) a generation ran on."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row["id"], row["prompt"], row.get("meta") or {}], sort_keys=True,
                                 ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def template_hash(template: str = PROMPT_TEMPLATE) -> str:
    return hashlib.sha256(template.encode()).hexdigest()
