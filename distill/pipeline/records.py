"""Gather a finished sweep into the report's records: one per student run, plus ceiling and floor.

Scores come from the evaluations' ``results.json`` (the first task of ``eval.tasks`` is the headline
score); costs come from the ``meta.json`` of the steps that produced each run: wall time x devices of
its training and evaluation, its share of teacher generation (per accepted synthetic example,
rejected samples included) and the human examples it used.
"""
from __future__ import annotations

import json

from distill.artifacts import read_meta
from distill.pipeline.execute import StepContext


def _device_s(meta: dict) -> tuple[float, int]:
    return float(meta.get("wall_s", 0.0)), int((meta.get("devices") or {}).get("count", 1))


def _generation_cost(ctx: StepContext, steps: dict) -> tuple[float, dict[str, int]]:
    """Teacher device-seconds over all shards, and the accepted rows of each synthetic source."""
    gen = [s for s in steps.values() if s.kind == "generate"]
    merge = [s for s in steps.values() if s.kind == "merge"]
    seconds = 0.0
    for s in gen:
        wall, devices = _device_s(read_meta(ctx.step_folder(s.id)))
        seconds += wall * devices
    accepted: dict[str, int] = {}
    if merge:
        report = json.loads((ctx.step_folder(merge[0].id) / "report.json").read_text())
        accepted = {name: src["rows"] for name, src in report["sources"].items()}
    return seconds, accepted


def collect_records(ctx: StepContext) -> dict:
    from evals.lmeval import score_record

    steps = ctx.steps
    cfg = ctx.step.config
    evals = [steps[d] for d in ctx.step.deps]
    task = evals[0].config["eval"]["tasks"][0]
    teacher_s, accepted = _generation_cost(ctx, steps)
    out = {"name": ctx.run_dir.name, "unit": cfg["mixes"]["unit"], "human_pool": cfg["human_pool"],
           "ceiling": None, "floor": None, "runs": [], "meta": {"task": task, "run_dir": str(ctx.run_dir)}}
    for ev in evals:
        folder = ctx.step_folder(ev.id)
        results = json.loads((folder / "results.json").read_text())
        role = ev.labels["role"]
        if role in ("teacher", "floor"):
            out["ceiling" if role == "teacher" else "floor"] = score_record(results, task)
            continue
        train_step = steps[ev.deps[0]]
        record = {k: ev.labels[k] for k in ("arm", "fraction", "n", "seed")}
        if results.get("feasible") is False:
            out["runs"].append({**record, "score": None, "items": None, "feasible": False})
            continue
        train_meta = read_meta(ctx.step_folder(train_step.id))
        counts = {u["pool"]: u["examples"] for u in train_meta["result"]["mix"]["sources"]}
        synthetic = sum(v for k, v in counts.items() if k != "human")
        source = train_step.config["mix"]["arm"]["synthetic"]
        train_s, train_dev = _device_s(train_meta)
        eval_s, eval_dev = _device_s(read_meta(folder))
        cost = {"teacher_s": teacher_s * synthetic / accepted[source] if synthetic and accepted.get(source)
                else 0.0, "teacher_devices": 1,
                "human": min(counts.get("human", 0), cfg["human_pool"] or counts.get("human", 0)),
                "train_s": train_s, "train_devices": train_dev, "eval_s": eval_s, "eval_devices": eval_dev}
        out["runs"].append({**record, **score_record(results, task), "feasible": True, "cost": cost})
    return out
