"""What a step's id is made of: the config fields the step reads, and the content of local files.

Two rules keep reruns honest. A step's id must change when anything it reads changes, including a
local data file or model folder edited in place (its path alone would not change), so every local
file a step reads adds a fingerprint of its content to the step (``Step.inputs``). And a step's id
must not change when something it does not read changes: ``identity_config`` drops, per step kind,
the recipe fields the stage never looks at (the human pool size does not touch the teacher, the
generation or the test split), so such a change reruns only the steps that read it.
"""
from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from distill.pipeline.kinds import kind_of
from distill.registry import GENERATION_BACKENDS  # their option sections: unread unless in use

EVAL_UNREAD = {"teacher", "floor"}  # they decide which evaluations exist, not what one computes



def identity_config(kind: str, config: dict) -> dict:
    """The part of a step's config its id is computed from."""
    out = dict(config)
    world = out.get("world")
    if isinstance(world, dict):
        # kinds.py says why
        unread = kind_of(kind).world_unread.get(world.get("kind", "arithmetic"), frozenset())
        out["world"] = {k: v for k, v in world.items() if k not in unread}
    if kind == "eval" and isinstance(out.get("eval"), dict):
        out["eval"] = {k: v for k, v in out["eval"].items() if k not in EVAL_UNREAD}
    gen = out.get("generation")
    if isinstance(gen, dict) and "backend" in gen:
        out["generation"] = {k: v
                             for k, v in gen.items() if k not in GENERATION_BACKENDS or k == gen["backend"]}
    student = out.get("student")
    if isinstance(student, dict):  # a given model: its arch is unread; a built one: only its arch is read
        given = bool(student.get("model"))
        out["student"] = {k: v for k, v in student.items() if (k != "arch") == given or k == "model"}
    return out


# ----------------------------------------------------------------------------- local files
WHOLE_FILE_LIMIT = 256 << 20  # larger files: size + mtime + the first and last MiB


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's content; of its size, mtime and first and last MiB when it is large."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if st.st_size <= WHOLE_FILE_LIMIT:
            while block := handle.read(1 << 20):
                digest.update(block)
        else:
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            digest.update(handle.read(1 << 20))
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def path_fingerprint(path: str | Path) -> str:
    """A file's fingerprint, or a folder's (names and fingerprints of the files under it)."""
    path = Path(path).expanduser()
    if path.is_file():
        return file_fingerprint(path)
    digest = hashlib.sha256()
    for sub in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{sub.relative_to(path)}\0{file_fingerprint(sub)}\0".encode())
    return digest.hexdigest()[:16]


def hub_revision(repo_id: str, revision: str | None) -> str | None:
    """The commit a hub id resolves to in the local HF cache, when it is there (no network)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except (HFValidationError, ValueError, OSError):  # not a repo id, or no cache: nothing known
        return None
    if not isinstance(found, str):
        return None
    parts = Path(found).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def recipe_inputs(recipe) -> dict[str, str]:
    """{path or hub id as written in the recipe: fingerprint or resolved revision} for everything
    outside the recipe that a step reads: local models and data files, task folders, configs."""
    from distill.recipe.checks import data_files, data_refs, looks_local

    out: dict[str, str] = {}
    models = [recipe.teacher, recipe.student, *(getattr(recipe, "teachers", None) or [])]
    for spec in models:
        if spec.model is None:
            continue
        if looks_local(spec.model) and Path(spec.model).expanduser().exists():
            out[spec.model] = path_fingerprint(spec.model)
        elif (rev := hub_revision(spec.model, spec.revision)) is not None:
            out[spec.model] = f"rev:{rev}"
    for _, ref in data_refs(recipe):
        for pattern in data_files(ref) + [ref.path]:
            matches = sorted(glob.glob(os.path.expanduser(pattern))) if "://" not in pattern else []
            if matches and all(os.path.exists(m) for m in matches):
                out[pattern] = _joined(matches)
    source = recipe.experts.source if recipe.experts is not None else None  # work done elsewhere
    for path in (recipe.eval.include_path, recipe.train.accelerate_config, source):
        if path and Path(path).expanduser().exists():
            out[path] = path_fingerprint(path)
    return out


class InputChanged(ValueError):
    """A local file a step's id hashed is not the file the step would read (edited after planning)."""


def check_inputs_unchanged(step) -> None:
    """Raise ``InputChanged`` when a local file behind ``step.inputs`` differs from what was planned:
    the step would publish, under the id of one content, what it read from another."""
    for key, planned in step.inputs.items():
        if planned.startswith("rev:"):  # a hub model: its revision is pinned in the cache
            continue
        expanded = os.path.expanduser(key)
        matches = sorted(glob.glob(expanded)) or ([expanded] if os.path.exists(expanded) else [])
        now = _joined(matches) if matches else "missing"
        if now != planned:
            raise InputChanged(f"{key}: changed since this run was planned (content {planned}, now {now}); "
                               "rerun the same command: the steps that read it are planned anew")


def _joined(paths: list[str]) -> str:
    if len(paths) == 1:
        return path_fingerprint(paths[0])
    return hashlib.sha256("".join(f"{p}\0{path_fingerprint(p)}\0" for p in paths).encode()).hexdigest()[:16]


def _strings(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*map(_strings, node.values())) if node else set()
    if isinstance(node, (list, tuple)):
        return set().union(*map(_strings, node)) if node else set()
    return set()


def with_inputs(steps: list, fingerprints: dict[str, str]) -> list:
    """The steps with the fingerprints of the local inputs each one reads (any value of its identity
    config that names one); ids are recomputed in topological order, so a changed file changes its
    readers' ids and, through their deps, everything downstream of them."""
    if not fingerprints:
        return steps
    new_id: dict[str, str] = {}
    out = []
    for step in steps:
        used = _strings(identity_config(step.kind, step.config)) & fingerprints.keys()
        new = replace(step, deps=tuple(new_id.get(d, d) for d in step.deps),
                      config=_renamed(step.config, new_id),
                      inputs={k: fingerprints[k] for k in sorted(used)})
        new_id[step.id] = new.id
        out.append(new)
    return out


def _renamed(node: Any, new_id: dict[str, str]) -> Any:
    """A config whose references to other steps (``{"step": id}``, e.g. an eval's model) follow their
    new ids, as ``deps`` do."""
    if isinstance(node, dict):
        return {k: new_id.get(v, v) if k == "step" and isinstance(v, str) else _renamed(v, new_id)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, new_id) for v in node]
    return node
