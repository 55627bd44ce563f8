"""Gather a finished sweep into the report's records: one per student run, plus ceiling and floor.

Scores come from the evaluations' ``results.json`` (the first task of ``eval.tasks`` is the headline
score); costs come from the ``meta.json`` of the steps that produced each run: wall time x devices of
its training and evaluation, its share of teacher generation (per accepted synthetic example,
rejected samples included) and the human examples it used.
"""
from __future__ import annotations

import json

from distill.artifacts import read_meta
from distill.pipeline.context import StepContext, config_of
from distill.pipeline.plan import Step
from distill.recipe.schema import Mixes
from evals.analysis.frontier import teacher_seconds
from evals.analysis.records import (
    ArmSource,
    Check,
    Cost,
    ExpertWork,
    Reference,
    RunRecord,
    SweepMeta,
    SweepRecords,
)
from evals.lmeval import continuous_record, score_record


def _device_s(meta: dict) -> tuple[float, int]:
    return float(meta.get("wall_s", 0.0)), int((meta.get("devices") or {}).get("count", 1))


def _generation_cost(ctx: StepContext, steps: dict) -> tuple[float, dict[str, int]]:
    """Teacher device-seconds over all shards, and the accepted rows of each synthetic source, of the
    generation this report's students read (a run with several teachers or generations has several)."""
    trains = [steps[d] for e in ctx.step.deps for d in steps[e].deps if steps[d].kind == "train"]
    merge = [steps[m] for m in dict.fromkeys(d for t in trains for d in t.deps if steps[d].kind == "merge")]
    gen = [steps[d] for m in merge for d in m.deps if steps[d].kind == "generate"]
    seconds = 0.0
    for s in gen:
        wall, devices = _device_s(read_meta(ctx.step_folder(s.id)))
        seconds += wall * devices
    accepted: dict[str, int] = {}
    if merge:
        report = json.loads((ctx.step_folder(merge[0].id) / "report.json").read_text())
        accepted = {name: src["rows"] for name, src in report["sources"].items()}
    return seconds, accepted


def _arm_sources(mixes: Mixes) -> dict[str, ArmSource]:
    """Per arm, the source of its human part: human (written) or an expert primitive on drafts."""
    return {a.name: ArmSource(human=a.human, fraction=a.fraction,
                              **({"objective": a.objective} if a.objective != "sft" else {}),
                              **({"allocator": a.allocator} if a.allocator else {})) for a in mixes.arms}


def _experts(ctx: StepContext, steps: dict) -> dict[str, ExpertWork]:
    """Who did each primitive's work (simulated experts are labelled so in the report)."""
    out = {}
    for s in steps.values():
        work = ctx.step_folder(s.id) / "work.json"
        if s.kind == "expert" and work.exists():
            w = json.loads(work.read_text())
            out[w["primitive"]] = ExpertWork(expert=w["expert"], simulated=w["simulated"],
                                             human_s=w["human_s"])
    return out


def collect_records(ctx: StepContext) -> SweepRecords:
    """The sweep's records, built once from its steps' files; the report reads nothing else."""
    steps = ctx.steps
    cfg = ctx.config
    evals = [steps[d] for d in ctx.step.deps if steps[d].kind == "eval"]
    task = config_of(evals[0]).eval.tasks[0]
    teacher_s, accepted = _generation_cost(ctx, steps)
    refs: dict[str, Reference | None] = {"teacher": None, "floor": None}
    runs: list[RunRecord] = []
    checks: list[Check] = []
    verifier = [ctx.step_folder(d) / "verifier.json" for d in ctx.step.deps if steps[d].kind == "verifier"]
    for ev in evals:
        results = json.loads((ctx.step_folder(ev.id) / "results.json").read_text())
        role = ev.labels["role"]
        if role in refs:
            refs[role] = Reference(**_scored(results, task))
        elif role == "check":  # convergence check: the same run with a larger training budget
            train = read_meta(ctx.step_folder(ev.deps[0]))["result"]["train"]
            checks.append(Check(**_mix(ev), factor=ev.labels["check"],
                                score=score_record(results, task)["score"],
                                steps=train["steps"]))
        elif results.get("feasible") is False:
            runs.append(RunRecord(**_mix(ev), score=None, items=None, feasible=False))
        else:
            runs.append(RunRecord(**_mix(ev), **_scored(results, task), feasible=True,
                                  cost=_cost(ctx, ev, teacher_s, accepted)))
    # step marks as a verifier: best-of-n and localisation (distill/human/verifier_step.py)
    extra = {"verifier": json.loads(verifier[0].read_text())} if verifier else {}
    meta = SweepMeta(task=task, run_dir=str(ctx.run_dir), arms=_arm_sources(cfg.mixes),
                     experts=_experts(ctx, steps),
                     **extra)
    return SweepRecords(name=ctx.run_dir.name, unit=cfg.mixes.unit, human_pool=cfg.human_pool,
                        ceiling=refs["teacher"], floor=refs["floor"], runs=runs, checks=checks, meta=meta)


def _mix(ev: Step) -> dict:
    return {k: ev.labels[k] for k in ("arm", "fraction", "n", "seed")}


def _cost(ctx: StepContext, ev: Step, teacher_s: float, accepted: dict[str, int]) -> Cost:
    """The run's training and evaluation device time, its share of the teacher's, and the human data
    (examples, and expert seconds once per unique row) it used."""
    train_step = ctx.steps[ev.deps[0]]
    train_meta = read_meta(ctx.step_folder(train_step.id))
    counts = {u["pool"]: u["examples"] for u in train_meta["result"]["mix"]["sources"]}
    synthetic = sum(v for k, v in counts.items() if k != "human")
    source = config_of(train_step).mix.arm.synthetic
    train_s, train_dev = _device_s(train_meta)
    init = next((d for d in train_step.deps if ctx.steps[d].kind == "train"), None)
    if init is not None:  # an SFT-then-preference run: the training of its SFT student counts too
        train_s += _device_s(read_meta(ctx.step_folder(init)))[0]
    eval_s, eval_dev = _device_s(read_meta(ctx.step_folder(ev.id)))
    # the teacher's device-seconds per accepted example (rejected samples included), times those used
    cost = {"teacher_s": teacher_seconds(synthetic, teacher_s, accepted[source]) if accepted.get(source)
            else 0.0, "teacher_devices": 1,
            "human": min(counts.get("human", 0), ctx.config.human_pool or counts.get("human", 0)),
            "train_s": train_s, "train_devices": train_dev, "eval_s": eval_s, "eval_devices": eval_dev}
    ledger = ctx.step_folder(train_step.id) / "human_time.json"  # expert seconds, once per unique row
    if ledger.exists():
        cost["human_s"] = json.loads(ledger.read_text())["human_s"]
    return Cost(**cost, train_steps=train_meta["result"]["train"]["steps"])


def _scored(results: dict, task: str) -> dict:
    """The headline score and items, plus the continuous score when the evaluation has one."""
    record = score_record(results, task)
    continuous = continuous_record(results)
    return record if continuous is None else {**record, "continuous": continuous}
