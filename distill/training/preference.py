"""Preference training of a student (DPO, APO-zero) on ``(prompt, chosen, rejected)`` pairs.

``train_preference_here(job)`` is ``trainer.train_here`` for a job whose ``objective`` is ``dpo`` or
``apo``: the same runtime (one process, or ranks under accelerate / DeepSpeed), optimizer, learning
rate schedule, checkpoints and resume, and the same files in ``out_dir``. What differs:

- the data is a ``datasets`` folder with columns prompt, chosen, rejected (what TRL's ``DPOTrainer``
  reads); one step takes ``global_batch_size`` pairs, each pass over the pairs in a seeded order;
- the loss is ``losses.preference`` on completion-only sequence log-probs of the policy and of a
  frozen reference (``job.reference``; by default the model training starts from, i.e. the arm's SFT
  student), averaged over the pairs of the global batch whatever the world size and accumulation;
- a micro-batch is its chosen and rejected sequences right-padded with an attention mask, not packed:
  a pair's two log-probs come from two rows, and packing them would buy little on pairs this short.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from distill import distributed
from distill.artifacts import atomic_write_json, write_meta
from distill.models import load_model, load_tokenizer
from distill.training import checkpoints, losses
from distill.training.job import TrainJob, TrainResult, finished_result
from distill.training.packing import IGNORE, build_example
from distill.training.schedule import Batching, lr_at, make_batching

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class Pairs:
    """Tokenized pairs: each side is prompt + completion + EOS, with the prompt's length."""

    chosen: list[list[int]]
    rejected: list[list[int]]
    n_prompt: list[int]
    truncated: int

    def order(self, seed: int, start: int, stop: int) -> list[int]:
        """Pair indices at positions [start, stop) of the stream: pass after pass, each shuffled by seed."""
        n, out = len(self.chosen), []
        for pos in range(start, stop):
            epoch, i = divmod(pos, n)
            out.append(_permutation(n, seed, epoch)[i])
        return out


_PERMS: dict[tuple[int, int, int], list[int]] = {}


def _permutation(n: int, seed: int, epoch: int) -> list[int]:
    key = (n, seed, epoch)
    if key not in _PERMS:
        perm = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(perm)
        _PERMS[key] = perm
    return _PERMS[key]


def load_pairs(path: str | Path, tokenizer, seq_len: int) -> Pairs:
    from datasets import load_from_disk

    folder = Path(path)
    folder = folder / "pairs" if (folder / "pairs" / "dataset_info.json").exists() else folder
    if not (folder / "dataset_info.json").exists():
        raise FileNotFoundError(f"preference data {str(path)!r}: no datasets folder (prompt, "
                                "chosen, rejected)")
    data = load_from_disk(str(folder))
    missing = set(PAIR_COLUMNS) - set(data.column_names)
    if missing or len(data) == 0:
        raise ValueError(f"preference data {str(path)!r}: {len(data)} rows, missing columns "
                         f"{sorted(missing)}")
    eos = tokenizer.eos_token_id
    prompts = tokenizer(list(data["prompt"]))["input_ids"]
    sides = {s: tokenizer(list(data[s]), add_special_tokens=False)["input_ids"]
             for s in ("chosen", "rejected")}
    pairs = Pairs([], [], [], 0)
    for p, c, r in zip(prompts, sides["chosen"], sides["rejected"]):
        (ci, n_p, cut_c), (ri, _, cut_r) = build_example(p, c, eos, seq_len), build_example(p, r, eos,
                                                                                            seq_len)
        pairs.chosen.append(ci)
        pairs.rejected.append(ri)
        pairs.n_prompt.append(n_p)
        pairs.truncated += int(cut_c) + int(cut_r)
    return pairs


def collate_pairs(seqs: list[list[int]], n_prompt: list[int], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and labels with prompt and padding set to IGNORE."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for row, (s, n_p) in enumerate(zip(seqs, n_prompt)):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
        labels[row, n_p: len(s)] = torch.tensor(s[n_p:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pair_losses(model, reference, batch: dict[str, torch.Tensor], objective: str, beta: float):
    """Per-pair losses and rewards of a batch laid out [chosen..., rejected...]; the reference gets no
    grad."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    logps = losses.completion_logps(model(**inputs, use_cache=False).logits, batch["labels"])
    with torch.no_grad():
        ref = losses.completion_logps(reference(**inputs, use_cache=False).logits, batch["labels"])
    chosen, rejected = logps.chunk(2)
    ref_chosen, ref_rejected = ref.chunk(2)
    loss = losses.preference(objective, chosen, rejected, ref_chosen, ref_rejected, beta)
    margin = beta * ((chosen - ref_chosen) - (rejected - ref_rejected)).detach()
    return loss, margin


@dataclass
class _Run:
    job: TrainJob
    rt: distributed.Runtime
    tokenizer: object
    pairs: Pairs
    batching: Batching
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    raw_optimizer: torch.optim.Optimizer
    reference: torch.nn.Module
    losses: list[float] = field(default_factory=list)
    loop_s: float = 0.0


def train_preference_here(job: TrainJob) -> TrainResult:
    started = time.time()
    out = Path(job.out_dir)
    done = finished_result(job)
    if done is not None:
        return done
    rt = distributed.setup(job.config_path, bf16=job.train.dtype == "bfloat16")
    try:
        run = _build(job, rt)
        start, records = checkpoints.resume(rt, job, out)
        run.losses = [r["loss"] for r in records]
        _loop(run, start, out)
        rt.save_model(run.model, run.tokenizer, out / "model")
        result = _result(run, start, time.time() - started)
        if rt.is_main:
            atomic_write_json(out / "result.json", result.to_dict())
            write_meta(out, kind="train", job=job.to_dict(), result=result.to_dict(),
                       batching=asdict(run.batching), seed=job.seed, threads=rt.threads)
        rt.barrier()
        return result
    finally:
        rt.close()


def _build(job: TrainJob, rt: distributed.Runtime) -> _Run:
    from accelerate.utils import set_seed

    from distill.training.trainer import _optimizer  # one optimizer for both objectives

    set_seed(job.seed)
    tokenizer = load_tokenizer(job.model)
    pairs = load_pairs(job.data, tokenizer, job.train.seq_len)
    batching = make_batching(job.train, len(pairs.chosen), rt.world_size)
    model = load_model(job.model).to(torch.float32)
    model.train()
    raw = _optimizer(model, job.train.lr, job.train.weight_decay)
    wrapped, optimizer = rt.prepare(model, raw, batching.accumulation, batching.micro_batch_size,
                                    job.train.max_grad_norm)
    reference = load_model(job.reference or job.model, device=rt.device).to(torch.float32)
    reference.requires_grad_(False)
    reference.eval()
    return _Run(job, rt, tokenizer, pairs, batching, wrapped, optimizer, raw, reference)


def _loop(run: _Run, start: int, out: Path) -> None:
    from distill.training.trainer import _nowhere

    rt, batching, train = run.rt, run.batching, run.job.train
    with open(out / "metrics.jsonl", "a") if rt.is_main else _nowhere() as log:
        for step in range(start, batching.steps):
            t0 = time.perf_counter()
            record = _step(run, step)
            run.loop_s += time.perf_counter() - t0
            record["step"] = step + 1
            run.losses.append(record["loss"])
            if rt.is_main:
                log.write(json.dumps(record) + "\n")
                log.flush()
                if record["step"] % train.log_every == 0 or record["step"] == batching.steps:
                    print(f"step {record['step']}/{batching.steps} {run.job.objective} "
                          f"loss {record['loss']:.4f} margin {record['margin']:.3f} "
                          f"acc {record['accuracy']:.2f}", flush=True)
            if (step + 1) % train.checkpoint_every == 0 and step + 1 < batching.steps:
                checkpoints.save(rt, out, step + 1, batching.steps)


def _step(run: _Run, step: int) -> dict:
    """One optimizer step: the mean loss over the global batch's pairs, on every rank."""
    rt, batching, job = run.rt, run.batching, run.job
    lr = lr_at(step, batching, job.train)
    for group in run.raw_optimizer.param_groups:
        group["lr"] = lr
    # undoes accelerate's means
    scale = batching.world_size * batching.accumulation / batching.global_batch_size
    sums = [0.0, 0.0, 0.0]
    for micro in range(batching.accumulation):
        first, stop = batching.micro_rows(step, micro, rt.rank)
        idx = run.pairs.order(job.seed, first, stop)
        p = run.pairs
        batch = collate_pairs([p.chosen[i] for i in idx] + [p.rejected[i] for i in idx],
                              [p.n_prompt[i] for i in idx] * 2, run.tokenizer.pad_token_id)
        batch = {k: v.to(rt.device) for k, v in batch.items()}
        with rt.accumulate(run.model):
            loss, margin = pair_losses(run.model, run.reference, batch, job.objective, job.beta)
            rt.backward(loss.sum() * scale)
            if rt.sync_step:
                rt.clip(run.model, job.train.max_grad_norm)
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
        sums = [sums[0] + float(loss.detach().sum()), sums[1] + float(margin.sum()),
                sums[2] + float((margin > 0).float().sum())]
    total, margin, right = (v / batching.global_batch_size for v in rt.sum(sums))
    return {"loss": total, "lr": lr, "margin": margin, "accuracy": right}


def _result(run: _Run, start: int, wall_s: float) -> TrainResult:
    batching, p = run.batching, run.pairs
    idx = p.order(run.job.seed, 0, batching.steps * batching.global_batch_size)
    tokens = sum(len(p.chosen[i]) + len(p.rejected[i]) for i in idx)
    trained = tokens * (batching.steps - start) / batching.steps
    computed = 0
    for step in range(batching.steps):  # each micro-batch is as wide as its longest sequence
        for micro in range(batching.accumulation):
            for rank in range(batching.world_size):
                part = p.order(run.job.seed, *batching.micro_rows(step, micro, rank))
                lens = [len(p.chosen[i]) for i in part] + [len(p.rejected[i]) for i in part]
                computed += max(lens) * len(lens)
    return TrainResult(
        steps=batching.steps, tokens=tokens, tokens_per_source={"pairs": tokens}, examples=len(idx),
        passes=len(idx) / len(p.chosen), final_loss=run.losses[-1] if run.losses else float("nan"),
        loss_head=run.losses[:5], loss_tail=run.losses[-5:], wall_s=wall_s,
        tokens_per_s=trained / run.loop_s if run.loop_s > 0 else 0.0, padding_waste=1 - tokens / computed,
        truncated=p.truncated, world_size=run.rt.world_size, devices=run.rt.describe(), resumed_from=start,
        extra={"backend": run.rt.backend, "accumulation": batching.accumulation,
               "objective": run.job.objective, "beta": run.job.beta,
               "reference": (run.job.reference or run.job.model).model},
    )
