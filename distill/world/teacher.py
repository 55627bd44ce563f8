"""A built teacher: a small Llama that distill's own trainer pretrains on a world's teacher corpus (the
embedded arithmetic world, or a reasoning-gym world: any world whose task has a ``corpus``).

It trains until its accuracy on the world's validation split reaches ``build.target_accuracy`` (checked
every ``eval_every`` steps, on the first ``eval_size`` validation problems) or ``max_steps`` pass. Never
on the test split: the ceiling is scored there, and a build stopped on test problems would pick the
checkpoint that happens to do well on them. Stopping at a target, not a step count, keeps the
ceiling where the recipe wants it: a tiny model's accuracy jumps between nearby checkpoints. An
undertrained arithmetic model fails on long carry and borrow chains, so its errors are systematic,
which is what the synthetic arms inherit. The result is cached by the step id (built once).
"""
from __future__ import annotations

from pathlib import Path

import torch

from distill.recipe.schema import ArithmeticWorld, ReasoningGymWorld, TeacherBuild, Train
from distill.sources import save_source
from distill.world import build_task
from distill.world.task import Task

# The arithmetic world's teacher was calibrated with these (the demo's figures): ~36 tokens an
# example, rows of 256 tokens, answers within 48 new tokens. Other worlds measure their own.
_ARITHMETIC_SHAPE = (256, 36, 48)


@torch.no_grad()
def greedy_accuracy(model, tokenizer, rows: list[dict], correct, batch_size: int = 256,
                    max_new_tokens: int = 48) -> float:
    """The share of rows whose greedy completion (batched, left padding) ``correct(row, text)`` accepts."""
    was_training = model.training
    model.eval()
    right = 0
    tokenizer.padding_side = "left"
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        enc = tokenizer([r["prompt"] for r in batch], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        right += sum(bool(correct(r, t)) for t, r in zip(texts, batch))
    model.train(was_training)
    return right / max(1, len(rows))


def _shape(world, build: TeacherBuild, tok, corpus: list[dict]) -> tuple[int, int, int]:
    """(seq_len, tokens per example, max new tokens) of the build."""
    if isinstance(world, ArithmeticWorld):
        return _ARITHMETIC_SHAPE
    sample = corpus[:500]
    lengths = [len(tok(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) + 1
               for r in sample]
    answers = [len(tok(r["completion"], add_special_tokens=False)["input_ids"]) for r in sample]
    return build.arch.max_position_embeddings, round(sum(lengths) / len(lengths)), max(answers) + 8


def build_teacher(world: ArithmeticWorld | ReasoningGymWorld, build: TeacherBuild, tokenizer_dir: Path,
                  out: Path, threads: int) -> dict:
    from transformers import AutoTokenizer

    from distill.models import init_llama, save_pretrained
    from distill.training import TrainJob, train

    if world.val_size == 0:
        raise ValueError("teacher.build: world.val_size=0 leaves no validation split to stop the build on")
    task: Task = build_task(world)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    init = out / "init"
    if not (init / "config.json").exists():
        save_pretrained(init_llama(build.arch, tok, seed=build.seed), tok, init)
    corpus_rows = task.corpus(build.corpus_size)
    corpus = out / "corpus"
    if not (corpus / "data").exists():
        save_source(corpus_rows, corpus)
    held_out = task.val()[:build.eval_size]
    seq_len, per_example, max_new = _shape(world, build, tok, corpus_rows)
    history: list[tuple[int, float]] = []

    def stop(model, step: int) -> bool:
        if step % build.eval_every:
            return False
        acc = greedy_accuracy(model, tok, held_out, task.verify, max_new_tokens=max_new)
        history.append((step, acc))
        print(f"teacher step {step}: validation accuracy {acc:.3f} (target {build.target_accuracy})",
              flush=True)
        return acc >= build.target_accuracy

    # build.batch_size counts examples; the trainer counts packed rows of seq_len
    rows_per_step = max(1, round(build.batch_size * per_example / seq_len))
    train_cfg = Train(epochs=None, tokens=build.max_steps * rows_per_step * seq_len, seq_len=seq_len,
                      global_batch_size=rows_per_step, micro_batch_size=rows_per_step, lr=build.lr,
                      warmup_ratio=0.02, schedule="constant", checkpoint_every=build.eval_every)
    result = train(TrainJob(model=str(init), data=str(corpus), out_dir=str(out / "train"), train=train_cfg,
                            seed=build.seed), stop=stop)
    model_dir = out / "train" / "model"
    if (out / "model").is_symlink():  # a rerun after a crash between training and this link
        (out / "model").unlink()
    (out / "model").symlink_to(model_dir.relative_to(out))
    return {"accuracy_history": history, "steps": result.steps, "train_wall_s": result.wall_s,
            "final_accuracy": history[-1][1] if history else None}
