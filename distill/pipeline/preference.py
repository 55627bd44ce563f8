"""The second step of an SFT-then-preference arm (``objective: dpo | apo``).

The arm's first step is an ordinary SFT step on its mix (its step id is the one an SFT arm of the
same name and mix would have). This step starts from that SFT student, keeps a frozen copy of it as
the reference, and trains on the expert's pairs (``pairs/`` of the expert step: chosen over rejected
for picks, edit over draft for edits) of exactly the expert items the SFT student saw. So the two
steps together cost the expert seconds of the SFT step and no more: its ``human_time.json`` is the
SFT step's.
"""
from __future__ import annotations

import json
import shutil

from distill.artifacts import atomic_write_json
from distill.pipeline.configs import ModelRef
from distill.pipeline.context import StepContext, as_dict, model_ref
from distill.pipeline.mixes import plan_of


def seen_pairs(pairs: list[dict], seen: set[str], rows: int) -> list[dict]:
    """The pairs of the expert items a student saw: those of its source rows, plus the same share of
    the pairs that have no source row (picks of neither still ranked; their seconds were spread over
    the source's ``rows`` by the ledger, so a mix of k of them paid for k / rows), in stored order."""
    of_rows = [p for p in pairs if p.get("row", True) and p["id"] in seen]
    only = [p for p in pairs if not p.get("row", True)]
    share = min(1.0, len(seen) / rows) if rows else 0.0
    return of_rows + only[:round(share * len(only))]


def run_preference_train(ctx: StepContext) -> dict:
    from datasets import load_from_disk

    from distill.human.pairs import save_pairs
    from distill.training import TrainJob

    cfg = ctx.config
    arm = cfg.mix.arm
    init_id = ctx.dep_id("train")
    init = ctx.step_folder(init_id)
    if (init / "infeasible.json").exists():  # the SFT student's mix was infeasible: so is this run
        shutil.copy(init / "infeasible.json", ctx.folder / "infeasible.json")
        return {"feasible": False, "init": init_id}
    expert = ctx.step_folder(next(d for d in ctx.step.deps if ctx.steps[d].kind == "expert"))
    student = model_ref(ctx, ModelRef(step=ctx.dep_id("student")))
    merge = ctx.deps("merge")
    plan, _ = plan_of(cfg.mix, student, ctx.dep("human") / "source", merge[0] if merge else None,
                      {arm.human: expert / "source"}, ctx.cache / "tokens")
    seen = {e.id for e in plan.entries if e.source == arm.human}
    pairs = seen_pairs([dict(r) for r in load_from_disk(str(expert / "pairs"))], seen,
                       json.loads((expert / "work.json").read_text())["rows"])
    if not pairs:
        raise ValueError(f"no pair among the {arm.human} rows its SFT student saw has two different sides "
                         f"(arm {arm.name!r} n={cfg.mix.n} seed={cfg.mix.seed}, {len(seen)} rows)")
    save_pairs(pairs, ctx.folder / "pairs")
    shutil.copy(init / "human_time.json", ctx.folder / "human_time.json")  # the same expert items
    sft = model_ref(ctx, ModelRef(step=init_id))
    result = ctx.train(TrainJob(model=sft, data=str(ctx.folder / "pairs"), out_dir=str(ctx.folder),
                                train=cfg.train, seed=cfg.mix.seed, objective=arm.objective,
                                beta=arm.preference.beta, reference=sft))
    atomic_write_json(ctx.folder / "pairs.json",
                      {"pairs": len(pairs), "rows_seen": len(seen), "init": init_id,
                                                  "pair_only": sum(not p.get("row", True) for p in pairs)})
    return {"mix": plan.to_dict(), "feasible": True, "train": as_dict(result), "pairs": len(pairs),
            "init": init_id}
