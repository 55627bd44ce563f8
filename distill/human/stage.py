"""The ``expert`` step: one human-effort primitive's work on the teacher's drafts, as a source.

It reads the merged raw teacher drafts (``merge/synthetic``), takes the drafts of the first
``experts.drafts`` prompts and has them worked on by ``experts.kind``:

- ``simulated``: the embedded world's solver-backed expert (``distill.human.expert``);
- ``model``: a model standing in for the expert (``distill.human.model_expert``), labelled simulated;
- ``label_studio`` / ``argilla`` / ``prm800k``: people. The step writes the tasks into ``export/``
  and waits: until the finished-work file is in ``import/`` it stops with ``AnnotationsPending``
  (``distill status`` shows it waiting); rerun ``distill run`` once the file is there.
- ``source``: people, elsewhere: ``experts.source`` holds finished work in this step's layout (e.g.
  CHAMP's marks from ``python -m distill.human.champ``); its rows are taken as they are.

It writes ``source/`` (rows with provenance and human seconds) and ``work.json`` (the ledger of the
whole job, including seconds spent on items that yielded no row).
"""
from __future__ import annotations

import json
from pathlib import Path

from distill.artifacts import atomic_write_json
from distill.human.annotation import AnnotationsPending, tasks_for
from distill.human.pairs import preference_pairs, save_pairs
from distill.human.primitives import Work, drafts_by_prompt, primitive_of, simulate
from distill.recipe.schema import Experts
from distill.recipe.settings import work_folder_problem
from distill.sources import load_source, meta_of, save_source

WAITING_FILE = "waiting.json"
ROUND_TRIPS = {  # kind -> (exported file, expected finished-work file, what to put there)
    "label_studio": ("tasks.json", "export.json", "the project's Label Studio JSON export"),
    "argilla": ("records.json", "records.json", "the dataset's records from Argilla (records.to_json)"),
    "prm800k": ("questions.jsonl", "labels.jsonl", "the PRM800K-style label lines"),
}


def priced_human_rows(rows: list[dict], write_s: float) -> list[dict]:
    """Human-written rows with their cost: each was written from scratch by the world's solver."""
    return [{**r, "meta": {**(r.get("meta") or {}), "human_s": float(write_s), "action": "write",
                           "expert": "simulated-expert", "simulated": True}} for r in rows]


def _export(kind: str, tasks, folder: Path) -> Path:
    from distill.human import argilla, labelstudio, prm800k

    exporter = {"label_studio": labelstudio.export_tasks, "argilla": argilla.export_records,
                "prm800k": prm800k.export_questions}[kind]
    return exporter(tasks, folder)


def _import(kind: str, path: Path, tasks, experts: Experts) -> Work:
    from distill.human import argilla, labelstudio, prm800k

    if kind == "label_studio":
        return labelstudio.import_annotations(path, tasks)
    if kind == "argilla":
        return argilla.import_records(path, tasks, experts.times)
    return prm800k.import_labels(path, tasks)


def round_trip(kind: str, tasks, experts: Experts, folder: Path) -> Work:
    """Export once; import when the finished work is there, else raise ``AnnotationsPending``."""
    if kind == "prm800k" and tasks and tasks[0].primitive != "first_error":
        raise ValueError(f"experts.kind=prm800k imports first_error marks only, not {tasks[0].primitive}")
    exported, expected, what = ROUND_TRIPS[kind]
    if not (folder / "export" / exported).exists():
        _export(kind, tasks, folder / "export")
    path = folder / "import" / expected
    if not path.exists():
        (folder / "import").mkdir(parents=True, exist_ok=True)
        message = (f"waiting for annotations: put {what} at {path} "
                   f"(tasks: {folder / 'export' / exported}), then rerun")
        atomic_write_json(folder / WAITING_FILE, {"kind": kind, "import": str(path), "message": message})
        raise AnnotationsPending(message)
    work = _import(kind, path, tasks, experts)
    (folder / WAITING_FILE).unlink(missing_ok=True)
    return work


def work_elsewhere(folder: str, primitive: str) -> Work:
    """experts.kind=source: the rows of work people did elsewhere (an expert step's layout), as they are."""
    if problem := work_folder_problem(folder, [primitive]):
        raise ValueError(f"expert step: {problem}")
    root = Path(folder).expanduser()
    done = json.loads((root / "work.json").read_text())
    return Work(primitive, [{**r, "meta": meta_of(r)} for r in load_source(root / "source")],
                discarded_s=float(done.get("discarded_s", 0.0)), items=int(done.get("items", 0)))


def run_expert(ctx) -> dict:
    cfg = ctx.config
    experts, primitive = cfg.experts, cfg.primitive
    if experts.kind == "source":  # done elsewhere: no drafts of this run were shown
        work = work_elsewhere(experts.source, primitive)
        save_source(work.rows, ctx.folder / "source")
        simulated = any(bool(r["meta"].get("simulated")) for r in work.rows)  # as its rows say
        summary = {**work.summary(), "expert": experts.kind, "simulated": simulated, "from": experts.source}
        atomic_write_json(ctx.folder / "work.json", summary)
        return summary
    drafts = [dict(r) for r in load_source(ctx.dep("merge") / "synthetic")]
    groups = drafts_by_prompt(drafts, meta_of)
    limit = experts.drafts
    if cfg.allocation is not None:  # an arm's allocator: which drafts, under a budget of expert hours
        groups = _allocated(groups, cfg, ctx.dep("merge"), ctx.folder)
        limit = len(groups)
    if experts.kind == "simulated":
        if cfg.world.kind != "arithmetic":
            raise ValueError("experts.kind=simulated needs the embedded world's solver; use a "
                             "model or people")
        from distill.human.expert import SimulatedExpert

        expert = SimulatedExpert(experts.times, experts.error_rate, experts.seed)
        work = simulate(primitive, _twinned(groups, primitive), expert, meta_of, limit)
    elif experts.kind == "model":
        from distill.human.model_expert import ModelExpert

        work = ModelExpert(experts).work(tasks_for(primitive, groups, meta_of, limit))
    else:
        work = round_trip(experts.kind, tasks_for(primitive, groups, meta_of, limit), experts, ctx.folder)
    if cfg.allocation is not None:  # the choice travels with every row
        for row in work.rows:
            row["meta"] = {**row["meta"], "allocation": cfg.allocation.policy}
    save_source(work.rows, ctx.folder / "source")
    summary = {**work.summary(), "expert": experts.kind, "simulated": experts.kind in ("simulated", "model")}
    if cfg.allocation is not None:
        summary["allocation"] = cfg.allocation.model_dump()
    if primitive_of(primitive).pair_key:  # both sides kept: a `pairs` datasets folder for DPO / APO (and TRL)
        summary["pairs"] = len(save_pairs_of(primitive, work.rows + work.preferences, drafts,
                                             ctx.folder / "pairs"))
    atomic_write_json(ctx.folder / "work.json", summary)
    return summary


def _allocated(groups: dict[str, list[dict]], cfg, merge: Path, folder: Path) -> dict[str, list[dict]]:
    """The prompts the arm's allocator chose, in its order; its choices go to ``allocation.json``."""
    from dataclasses import asdict

    from distill.human.allocator import allocate

    verified = merge / "verified"
    passed = set(load_source(verified)["id"]) if (verified / "data").exists() else set()
    action_s = getattr(cfg.experts.times, primitive_of(cfg.primitive).time)
    choices = allocate(groups, cfg.allocation.policy, cfg.allocation.hours * 3600, action_s, cfg.primitive,
                       rejected=lambda d: d["id"] not in passed, seed=cfg.experts.seed)
    atomic_write_json(folder / "allocation.json", {**cfg.allocation.model_dump(), "primitive": cfg.primitive,
                                                   "choices": [asdict(c) for c in choices]})
    return {c.prompt_id: groups[c.prompt_id] for c in choices}


def _twinned(groups: dict[str, list[dict]], primitive: str) -> dict[str, list[dict]]:
    """A pick needs two drafts; exact dedup may have dropped an identical twin: show it twice."""
    if primitive_of(primitive).shows < 2:
        return groups
    return {k: v if len(v) > 1 else v * 2 for k, v in groups.items()}


def save_pairs_of(primitive: str, rows: list[dict], drafts: list[dict], folder: Path) -> list[dict]:
    pairs = preference_pairs(primitive, rows, drafts)
    save_pairs(pairs, folder)
    return pairs
