"""The embedded world's teacher: a small Llama that distill's own trainer pretrains on a teacher corpus.

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

from distill.recipe.schema import ArithmeticWorld, TeacherBuild, Train
from distill.sources import save_source
from distill.world import arithmetic as ar


@torch.no_grad()
def greedy_accuracy(model, tokenizer, rows: list[dict], extract, batch_size: int = 256,
                    max_new_tokens: int = 48) -> float:
    """Exact match of the extracted final answer under batched greedy decoding (left padding)."""
    was_training = model.training
    model.eval()
    correct = 0
    tokenizer.padding_side = "left"
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        enc = tokenizer([r["prompt"] for r in batch], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        correct += sum(extract(t) == r["meta"]["answer"] for t, r in zip(texts, batch))
    model.train(was_training)
    return correct / max(1, len(rows))


def build_teacher(world: ArithmeticWorld, build: TeacherBuild, tokenizer_dir: Path, out: Path,
                  threads: int) -> dict:
    from transformers import AutoTokenizer

    from distill.models import init_llama, save_pretrained
    from distill.training import TrainJob, train

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    init = out / "init"
    if not (init / "config.json").exists():
        save_pretrained(init_llama(build.arch, tok, seed=build.seed), tok, init)
    corpus = out / "corpus"
    if not (corpus / "data").exists():
        save_source([ar.record(p) for p in ar.problems(world, "teacher", build.corpus_size)], corpus)
    if world.val_size == 0:
        raise ValueError("teacher.build: world.val_size=0 leaves no validation split to stop the build on")
    held_out = [ar.record(p) for p in ar.problems(world, "val", min(build.eval_size, world.val_size))]
    history: list[tuple[int, float]] = []

    def stop(model, step: int) -> bool:
        if step % build.eval_every:
            return False
        acc = greedy_accuracy(model, tok, held_out, ar.extract_answer)
        history.append((step, acc))
        print(f"teacher step {step}: validation accuracy {acc:.3f} (target {build.target_accuracy})", flush=True)
        return acc >= build.target_accuracy

    # build.batch_size counts examples (~36 tokens each); the trainer counts packed rows of seq_len
    seq_len = 256
    rows_per_step = max(1, round(build.batch_size * 36 / seq_len))
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
