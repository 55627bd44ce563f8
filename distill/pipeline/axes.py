"""Runners of the two sweep axes beyond mixes: a generation's student (``lineage`` train steps) and
the reports that compare teachers and follow generations.

The planning lives in ``distill.pipeline.plan``; the pure data policies and diversity measures in
``distill.lineage``; the analysis in ``evals.analysis.teachers`` and ``evals.analysis.generations``;
their files are written by ``evals.report.teachers_report`` and ``evals.report.generations_report``.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from distill.artifacts import atomic_write_json
from distill.pipeline.context import StepContext
from evals.analysis.records import GenerationRun, GenerationsRecords, SweepRecords, TeachersRecords

MIX = "mix"  # the folder of a train step that holds the rows it trained on


def run_lineage_train(ctx: StepContext) -> dict:
    """Train one generation's student on the rows its policy picks from the human pool and the
    synthetic pools of earlier generations (dependency order: pool 1, 2, ...)."""
    from datasets import Dataset

    from distill.lineage import policy_rows
    from distill.pipeline.configs import ModelRef
    from distill.pipeline.context import as_dict as _as_dict
    from distill.pipeline.context import model_ref
    from distill.sources import load_source
    from distill.training import TrainJob

    cfg = ctx.config
    lineage = cfg.lineage
    student = model_ref(ctx, ModelRef(step=ctx.dep_id("student")))
    pools = [load_source(ctx.dep("human") / "source")]
    pools += [load_source(folder / "synthetic") for folder in ctx.deps("merge")]
    picks = policy_rows(lineage.policy, lineage.generation, [len(p) for p in pools],
                        subsample=lineage.subsample, seed=lineage.seed)
    columns = [(p["prompt"], p["completion"]) for p in pools]  # one column read per pool, not per row
    rows = [{"prompt": columns[k][0][i], "completion": columns[k][1][i],
             "source": "human" if k == 0 else f"generation-{k}", "weight": 1.0} for k, i in picks]
    if not rows:
        raise ValueError(f"generation {lineage.generation} ({lineage.policy}): no rows to train on "
                         f"(pool sizes {[len(p) for p in pools]})")
    Dataset.from_list(rows).save_to_disk(str(ctx.folder / MIX))
    # the student's model spec and the step's allocation (processes, nodes), like run_train;
    # early stopping (train.early_stop) reads the world's validation split, as for any student
    val = ctx.dep("human") / "val"
    result = ctx.train(TrainJob(model=student, data=str(ctx.folder / MIX), out_dir=str(ctx.folder),
                                train=cfg.train, seed=lineage.seed,
                                val_data=str(val) if (val / "data").exists() else None))
    return {"lineage": lineage.model_dump(mode="json", exclude_unset=True), "rows": len(rows),
            "sources": dict(Counter(r["source"] for r in rows)),
            "train": _as_dict(result)}


def run_teachers_report(ctx: StepContext) -> dict:
    from evals.report.teachers_report import write_teachers_report

    return _write(ctx, teacher_records(ctx), write_teachers_report)


def run_generations_report(ctx: StepContext) -> dict:
    from evals.report.generations_report import write_generations_report

    return _write(ctx, generation_records(ctx), write_generations_report)


def _write(ctx: StepContext, records: TeachersRecords | GenerationsRecords, write) -> dict:
    """``records.json`` (the typed records as written: unset defaults left out), then the report from them."""
    atomic_write_json(ctx.folder / "records.json", records.dumped())
    out = write(records, ctx.folder, ctx.config.report, tracker=ctx.tracker)
    return {"report": str(ctx.folder / "report.md"), "verdict": out.get("verdict")}


def teacher_records(ctx: StepContext) -> TeachersRecords:
    """Each teacher's data-wall report (report.json and its records.json), in recipe order."""
    out = {"name": ctx.run_dir.name, "teachers": []}
    for name, dep in zip(ctx.config.teachers, ctx.step.deps):
        folder = ctx.step_folder(dep)
        records = SweepRecords.of(json.loads((folder / "records.json").read_text())).dumped()
        report = json.loads((folder / "report.json").read_text())
        out["teachers"].append({"name": name, "ceiling": records["ceiling"], "floor": records["floor"],
                                "human_pool": records["human_pool"], "unit": records["unit"],
                                "fits": report["fits"], "crossovers": report["crossovers"],
                                "best_per_n": report["best_per_n"], "report": str(folder / "report.md"),
                                # each arm's mean at its largest N against the teacher (measured, not fitted)
                                "at_largest": (report.get("claims") or {}).get("teacher", [])})
    return TeachersRecords.of(out)


def generation_records(ctx: StepContext) -> GenerationsRecords:
    """One record per (policy, generation, seed): test score with per-item results, and the diversity of
    the rows that generation trained on. Generation 0 is shared by every policy and listed under each."""
    from datasets import load_from_disk

    from distill.lineage import diversity
    from distill.models import load_tokenizer
    from distill.pipeline.configs import ModelRef
    from distill.pipeline.context import config_of, model_ref
    from distill.world import build_task
    from evals.lmeval import score_record

    g = ctx.config.generations
    evals = [ctx.steps[d] for d in ctx.step.deps]
    first = config_of(evals[0])
    task_name = first.eval.tasks[0]
    world = first.world
    task = build_task(world)
    first_train = ctx.steps[evals[0].deps[0]]
    student = model_ref(ctx,
                        ModelRef(step=next(d for d in first_train.deps if ctx.steps[d].kind == "student")))
    tok = load_tokenizer(student.model)
    sample = g.prompts or world.human_pool  # diversity on samples as large as one generation's new data
    runs = []
    for ev in evals:
        results = json.loads((ctx.step_folder(ev.id) / "results.json").read_text())
        train = ctx.steps[ev.deps[0]]
        lineage = config_of(train).lineage
        data = load_from_disk(str(ctx.step_folder(train.id) / MIX))
        div = diversity(list(data["completion"]), lambda c: tok(c, add_special_tokens=False)["input_ids"],
                        task.extract_answer, n=g.ngram, sample=sample, seed=lineage.seed)
        record = {"generation": lineage.generation, "seed": lineage.seed, "rows": len(data),
                  **score_record(results, task_name), "diversity": div}
        for policy in [lineage.policy] if lineage.policy is not None else g.policies:
            runs.append({**record, "policy": policy})
    return GenerationsRecords(name=ctx.run_dir.name, task=task_name, policies=list(g.policies),
                              runs=[GenerationRun.model_validate(r) for r in runs],
                              run_dir=str(Path(ctx.run_dir)))
