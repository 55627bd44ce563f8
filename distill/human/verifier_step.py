"""The ``verifier`` step: the expert's first-error marks as a step scorer (PRM), used to rerank n samples
of one student on the test prompts (recipe section ``verifier``; the rules: ``distill.human.verifier``).

It reads the ``first_error`` expert step's rows (drafts with marks), the teacher's merged drafts are not
needed: each marked row carries its draft and its answer. The first ``1 - held_out`` of the marked rows
train two scorers from the same causal LM (``verifier.init``: the reranked student or the teacher):

- the PRM, on the expert's step labels (the marks' seconds are its cost);
- the outcome-only scorer, on the same drafts with every step labelled by the verifier's verdict on the
  final answer (the implicit-PRM idea: no step marks bought, so no expert seconds).

Then the student samples ``samples`` completions per test prompt and each method picks one: the first
sample, majority vote over final answers, best-of-n by the PRM (min or product of step scores) and by the
outcome-only scorer; ``oracle`` is pass@n. Per prompt 0/1 items go to ``verifier.json`` so the report
pairs methods on the same prompts. The held-out marked drafts measure each scorer's first-error
localisation (the first step scored below 0.5 against the expert's mark; "no mark" counts).
"""
from __future__ import annotations

import time

from distill.artifacts import atomic_write_json
from distill.human.verifier import (
    best_of_n,
    first_low_step,
    localisation_accuracy,
    majority_vote,
    outcome_labels,
    prm_labels,
    solution_score,
)
from distill.sources import load_source, meta_of

METHODS = ("first", "majority", "prm_min", "prm_product", "outcome_min", "outcome_product", "oracle")


def _scorer(init: str, tokenizer, items, v):
    from transformers import LlamaForTokenClassification

    from distill.training.prm import PRMTrain, train_prm

    model = LlamaForTokenClassification.from_pretrained(init, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    losses = train_prm(model, tokenizer, items, PRMTrain(v.steps, v.batch_size, v.lr, v.seed))
    return model, losses


def _labelled_mark(labels: list) -> int | None:
    return next((i for i, lab in enumerate(labels) if lab == 0), None)


def _localisation(scorers: dict, tokenizer, held: list[dict], after_mark: str) -> dict:
    from distill.training.prm import score_steps

    truth = [_labelled_mark(prm_labels(r["completion"], meta_of(r).get("mark_step"), after_mark))
             for r in held]
    out = {"drafts": len(held), "no_mark_baseline": localisation_accuracy([None] * len(truth), truth)}
    items = {"no_mark_baseline": [int(t is None) for t in truth]}  # per draft, so the report can pair them
    for name, model in scorers.items():
        scores = score_steps(model, tokenizer, [(r["prompt"], r["completion"]) for r in held])
        found = [first_low_step(s) for s in scores]
        out[name] = localisation_accuracy(found, truth)
        items[name] = [int(f == t) for f, t in zip(found, truth)]
    return {**out, "items": items}


def _rerank(scorers: dict, tokenizer, task, rows: list[dict],
            samples: list[list[str]]) -> dict[str, list[int]]:
    """Per method, per prompt: 1 when the sample it picks is right."""
    from distill.training.prm import score_steps

    flat = [(r["prompt"], t) for r, texts in zip(rows, samples) for t in texts]
    step_scores = {name: score_steps(model, tokenizer, flat) for name, model in scorers.items()}
    items: dict[str, list[int]] = {m: [] for m in METHODS}
    for i, (row, texts) in enumerate(zip(rows, samples)):
        right = [int(task.verify(row, t)) for t in texts]
        n = len(texts)
        picks = {"first": 0, "majority": majority_vote([task.extract_answer(t) for t in texts])}
        for name in scorers:
            mine = step_scores[name][i * n:(i + 1) * n]
            for how in ("min", "product"):
                picks[f"{name}_{how}"] = best_of_n([solution_score(s, how) for s in mine])
        for method, pick in picks.items():
            items[method].append(right[pick])
        items["oracle"].append(max(right))
    return items


def _sample(student: str, task, rows: list[dict], v, max_new_tokens: int) -> list[list[str]]:
    from distill.generation.backends import Sampling, make_backend, requests_for
    from distill.recipe.schema import Generation, ModelSpec

    backend = make_backend("hf", ModelSpec(model=student),
                           Generation(max_new_tokens=max_new_tokens, batch_size=256))
    try:
        done = backend.generate(requests_for(rows, v.samples, v.seed),
                                Sampling(max_new_tokens, v.temperature))
    finally:
        backend.close()
    return [[c.text for c in done[i * v.samples:(i + 1) * v.samples]] for i in range(len(rows))]


def run_verifier(ctx) -> dict:
    from distill.models import load_tokenizer
    from distill.world import build_task

    cfg, started = ctx.config, time.time()
    v = cfg.verifier
    train_id = next(d for d in ctx.step.deps if ctx.steps[d].kind == "train")
    student = ctx.step_folder(train_id)
    if (student / "infeasible.json").exists():
        atomic_write_json(ctx.folder / "verifier.json", {"feasible": False})
        return {"feasible": False}
    marks = [dict(r) for r in load_source(ctx.dep("expert") / "source")]
    cut = round(len(marks) * (1 - v.held_out))
    fit, held = marks[:cut], marks[cut:]
    task = build_task(cfg.world)
    tokenizer = load_tokenizer(str(student / "model"))
    init = str((ctx.dep("teacher") if v.init == "teacher" else student) / "model")
    prm_items = [(r["prompt"], r["completion"],
                  prm_labels(r["completion"], meta_of(r).get("mark_step"), v.after_mark))
                 for r in fit]
    outcome_items = [(r["prompt"], r["completion"],
                      outcome_labels(r["completion"], task.verify({"meta": meta_of(r)}, r["completion"])))
                     for r in fit]
    (prm, prm_losses), (outcome, outcome_losses) = (_scorer(init, tokenizer, prm_items, v),
                                                    _scorer(init, tokenizer, outcome_items, v))
    scorers = {"prm": prm, "outcome": outcome}
    rows = task.test()[: v.prompts]
    samples = _sample(str(student / "model"), task, rows, v, cfg.max_new_tokens)
    items = _rerank(scorers, tokenizer, task, rows, samples)
    result = {"feasible": True, "arm": ctx.step.labels.get("arm"), "n": ctx.step.labels.get("n"),
              "samples": v.samples, "prompts": len(rows), "after_mark": v.after_mark, "init": v.init,
              "marks_trained": len(fit),
              "marks_human_s": sum(float(meta_of(r).get("human_s", 0.0)) for r in fit),
              "accuracy": {m: sum(x) / len(x) for m, x in items.items()}, "items": items,
              "localisation": _localisation(scorers, tokenizer, held, v.after_mark),
              "loss": {"prm": prm_losses[-5:], "outcome": outcome_losses[-5:]},
              "wall_s": time.time() - started}
    atomic_write_json(ctx.folder / "verifier.json", result)
    return {k: result[k] for k in ("feasible", "accuracy", "localisation", "marks_trained")}
