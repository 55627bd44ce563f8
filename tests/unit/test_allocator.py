"""The allocator of expert hours: each policy's order, the budget, its place in the DAG, and the expert
step working on the drafts it chose (choices recorded beside the source).
Run: pytest tests/unit/test_allocator.py -q"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from distill.human.allocator import POLICIES, allocate
from distill.pipeline.plan import plan
from distill.recipe import RecipeError, load_recipe
from distill.world.arithmetic import problems, solve

pytestmark = pytest.mark.unit
RECIPE = Path(__file__).resolve().parents[2] / "recipes/human-effort.yaml"
ALLOCATED = ["experts.hours=0.05",
             "mixes.arms.2={name: edited, fraction: 0.0, human: edited, allocator: random}",
             "mixes.arms.4={name: edited-roi, fraction: 0.0, human: edited, allocator: roi}"]


def _groups(world, count=12):
    """Two drafts per prompt. Prompt i: draft 0 wrong when i % 3 == 0; the two disagree when i % 4 == 0;
    every sixth prompt's first draft is twice as long (extra steps)."""
    out = {}
    for i, p in enumerate(problems(world, "teacher", count)):
        right = solve(p.a, p.op, p.b)
        first = right.rsplit("A:", 1)[0] + "A:0" if i % 3 == 0 else right
        first = first + ";" + first if i % 6 == 1 else first
        second = right.rsplit("A:", 1)[0] + "A:1" if i % 4 == 0 else first
        out[p.id] = [{"id": f"{p.id}#0", "completion": first}, {"id": f"{p.id}#1", "completion": second}]
    return out


def test_each_policy_orders_by_its_rule_within_the_budget(world):
    groups = _groups(world)
    wrong = ({f"{k}#0" for i, k in enumerate(groups) if i % 3 == 0}
             | {f"{k}#1" for i, k in enumerate(groups) if i % 4 == 0})
    rejected = lambda d: d["id"] in wrong
    ids = list(groups)
    picks = {p: allocate(groups, p, 18 * 5 + 1, 18, "edited", rejected) for p in POLICIES}
    assert all(len(c) == 5 for c in picks.values())  # equal hours buy equal items under every policy
    assert sorted(c.prompt_id for c in allocate(groups, "random", 1e9, 18, "edited", rejected)) == sorted(ids)
    assert [c.prompt_id for c in picks["random"]] == [c.prompt_id for c in allocate(groups, "random", 91, 18,
                                                                                     "edited", rejected)]
    assert {c.prompt_id for c in picks["verifier_failed"][:4]} == {ids[i] for i in (0, 3, 6, 9)}
    assert {c.prompt_id for c in picks["disagreement"][:3]} == {ids[i] for i in (0, 4, 8)}
    roi = allocate(groups, "roi", 1e9, 18, "edited", rejected)
    assert {c.prompt_id for c in roi[:4]} == {ids[i] for i in (0, 3, 6, 9)}  # wrong ones first, shorter first
    assert [c.predicted_s for c in roi[:4]] == sorted(c.predicted_s for c in roi[:4])
    assert roi[-1].prompt_id in {ids[i] for i in (1, 7)}  # right and twice as long: least gain per second
    with pytest.raises(ValueError, match="allocator"):
        allocate(groups, "loudest", 100, 18, "edited", rejected)


def test_allocated_arms_get_their_own_expert_steps_and_others_keep_their_ids():
    base = {s.id for s in plan(load_recipe(RECIPE))}
    steps = plan(load_recipe(RECIPE, ALLOCATED))
    experts = [s for s in steps if s.kind == "expert"]
    allocated = {s.labels.get("allocator"): s for s in experts if "allocation" in s.config}
    assert set(allocated) == {"random", "roi"}
    assert all(s.config["allocation"]["hours"] == 0.05 and s.config["primitive"] == "edited"
               for s in allocated.values())
    # the plain expert steps are unchanged
    assert {s.id for s in experts if "allocation" not in s.config} <= base
    for t in (s for s in steps if s.kind == "train" and s.labels["arm"] in ("edited", "edited-roi")):
        policy = "random" if t.labels["arm"] == "edited" else "roi"
        assert allocated[policy].id in t.deps and t.config["mix"]["arm"]["allocator"] == policy
    with pytest.raises(RecipeError, match="set experts.hours"):
        load_recipe(RECIPE, ALLOCATED[1:])
    with pytest.raises(RecipeError, match="needs human: edited"):
        load_recipe(RECIPE,
                    ["experts.hours=1", "mixes.arms.0={name: human, fraction: 0.0, allocator: random}"])


def test_the_expert_step_works_on_the_allocated_drafts_and_records_them(world, tmp_path):
    from distill.human.stage import run_expert
    from distill.pipeline.configs import ExpertConfig
    from distill.sources import load_source, meta_of, save_source

    groups = _groups(world)
    rows = [{"id": d["id"], "prompt": p.prompt, "completion": d["completion"], "origin": "synthetic",
             "meta": {"prompt_id": p.id, "sample": s, "answer": p.answer}}
            for p in problems(world, "teacher", 12) for s, d in enumerate(groups[p.id])]
    merge = tmp_path / "merge"
    save_source(rows, merge / "synthetic")
    save_source([r for r in rows if r["completion"].endswith("A:" + r["meta"]["answer"])], merge / "verified")
    config = ExpertConfig.model_validate({"primitive": "edited", "world": {"kind": "arithmetic"},
                                          "experts": {"kind": "simulated", "drafts": 1000},
                                          "allocation": {"policy": "verifier_failed",
                                                         "hours": 4 * 18 / 3600}})
    ctx = SimpleNamespace(config=config, folder=tmp_path / "expert", dep=lambda kind: merge)
    summary = run_expert(ctx)
    assert summary["items"] == 4 and summary["human_s"] == pytest.approx(4 * 18)
    chosen = json.loads((ctx.folder / "allocation.json").read_text())["choices"]
    source = load_source(ctx.folder / "source")
    assert [meta_of(r)["prompt_id"] for r in source] == [c["prompt_id"] for c in chosen]
    assert all(meta_of(r)["allocation"] == "verifier_failed" for r in source)
    assert all(r["completion"] != g["completion"] for r in source
               for g in groups[meta_of(r)["prompt_id"]][:1])
