"""The student trainer: SFT on completions, optionally mixed with token-level KD.

``train_here(job)`` runs in this process, as one rank of whatever process group the environment
describes. ``distill.training.train`` hands a job that names an accelerate config to ``launch.run``,
which runs ``python -m distill.training.launch JOB.json`` on every rank; this loop then runs there.

The loop, per optimizer step ``s`` (all sizes global, see ``schedule.py``):
rows ``[s*G, (s+1)*G)`` of the packed row stream are split into micro-batches over ranks; the loss is
``sum(weight * token_loss) / sum(weight)`` over every completion token of the global batch, whatever
the world size and accumulation, so one process and N processes train the same model.

Restart safety (``checkpoints.py``): checkpoints land atomically in ``checkpoints/step-N``; the last two
are kept and a rerun resumes from the newest; since rows are a pure function of (data, seed, step),
the data order after a resume is the one it would have been.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from distill import distributed
from distill.artifacts import atomic_write_json, write_meta
from distill.models import load_model, load_tokenizer
from distill.training import attention, checkpoints, losses
from distill.training.data import Corpus, load_corpus
from distill.training.early_stop import Stopper, ValidationSet, replay
from distill.training.job import TrainJob, TrainResult, finished_result
from distill.training.packing import IGNORE, Packed, RowStream, collate
from distill.training.schedule import Batching, lr_at, make_batching

Tracker = Callable[[dict, int], None]
# called after every optimizer step with the (unwrapped) model and the step count; True ends training
# there (e.g. the embedded world's teacher stops once it reaches its target accuracy)
StopRule = Callable[[torch.nn.Module, int], bool]


def train_here(job: TrainJob, tracker: Tracker | None = None, stop: StopRule | None = None) -> TrainResult:
    """Train in this process, as one rank of whatever process group the environment describes."""
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
        if run.stopper is not None:
            run.stopper = replay(job.train.early_stop, records)
        _loop(run, start, out, tracker, stop)
        used_attention = rt.unwrap(run.model).config._attn_implementation
        rt.unwrap(run.model).set_attn_implementation(run.saved_attention)
        rt.save_model(run.model, run.tokenizer, out / "model")
        result = _result(run, start, time.time() - started, used_attention)
        if rt.is_main:
            atomic_write_json(out / "result.json", result.to_dict())
            write_meta(out, kind="train", job=job.to_dict(), result=result.to_dict(),
                       batching=asdict(run.batching), seed=job.seed, threads=rt.threads,
                       data_fingerprint=run.corpus.fingerprint)
        rt.barrier()
        return result
    finally:
        rt.close()


@dataclass
class _Run:
    job: TrainJob
    rt: distributed.Runtime
    tokenizer: object
    corpus: Corpus
    stream: RowStream
    batching: Batching
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    raw_optimizer: torch.optim.Optimizer
    teacher: torch.nn.Module | None
    saved_attention: str  # the model's own attention implementation, restored before saving
    losses: list[float] = field(default_factory=list)
    loop_s: float = 0.0  # seconds inside optimizer steps (throughput excludes setup and saving)
    stopped_at: int | None = None  # the step a stop rule ended training at
    validation: ValidationSet | None = None  # train.early_stop: the held-out rows
    stopper: Stopper | None = None
    final_val_loss: float | None = None


def _build(job: TrainJob, rt: distributed.Runtime) -> _Run:
    from accelerate.utils import set_seed

    set_seed(job.seed)
    train, kd = job.train, job.train.kd
    tokenizer = load_tokenizer(job.model)
    stored = kd.weight > 0 and kd.source == "stored"
    corpus = load_corpus(job.data, tokenizer, train.seq_len, want_topk=stored)
    stream = RowStream(corpus.lengths, train.seq_len, job.seed)
    rows_per_pass = _rows_per_pass(stream, len(corpus))
    batching = make_batching(train, rows_per_pass, rt.world_size)
    # the recipe's spec (revision, dtype, remote code, attention) loads it; training keeps fp32 master weights
    model = load_model(job.model).to(torch.float32)
    saved_attention = model.config._attn_implementation
    _packed_attention(model)
    model.train()
    raw = _optimizer(model, train.lr, train.weight_decay)
    wrapped, optimizer = rt.prepare(model, raw, batching.accumulation, batching.micro_batch_size,
                                    train.max_grad_norm)
    teacher = _teacher(job, tokenizer, rt.device) if kd.weight > 0 and kd.source == "online" else None
    run = _Run(job, rt, tokenizer, corpus, stream, batching, wrapped, optimizer, raw, teacher,
               saved_attention)
    if train.early_stop is not None:
        if job.val_data is None:
            raise ValueError(f"{job.out_dir}: train.early_stop needs validation data (job.val_data)")
        run.validation = ValidationSet(job.val_data, tokenizer, train.seq_len, train.micro_batch_size,
                                       tokenizer.pad_token_id)
        run.stopper = Stopper(train.early_stop)
    return run


def _packed_attention(model: torch.nn.Module) -> None:
    """Attend within each packed example only, at the cost of its own length (see attention.py)."""
    if attention.supports(model.config):
        try:
            model.set_attn_implementation(attention.register())
        except (ValueError, NotImplementedError):  # a model class that takes no custom attention
            pass


def _rows_per_pass(stream: RowStream, n: int) -> int:
    """Rows the first pass over the data packs into (an epoch, in rows)."""
    count, seen = 0, 0
    while seen < n:
        seen += len(stream.rows(count, count + 1)[0])
        count += 1
    return count


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; no decay on vectors (norms, biases). A client torch optimizer: no DeepSpeed JIT build."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.95))


def _teacher(job: TrainJob, tokenizer, device: torch.device) -> torch.nn.Module:
    teacher_tok = load_tokenizer(job.teacher)
    if teacher_tok.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"teacher {job.teacher.model!r} and student {job.model.model!r} have different "
                         "vocabularies; "
                         f"online KD needs one vocabulary")
    model = load_model(job.teacher, device=device)
    model.requires_grad_(False)
    _packed_attention(model)
    return model


# ----------------------------------------------------------------------------- the loop
def _loop(run: _Run, start: int, out: Path, tracker: Tracker | None, stop: StopRule | None = None) -> None:
    rt, batching, train = run.rt, run.batching, run.job.train
    tokens = _tokens_until(run, start)
    show = rt.is_main and (run.job.progress if run.job.progress is not None else sys.stderr.isatty())
    from tqdm.auto import tqdm

    bar = tqdm(total=batching.steps, initial=start, disable=not show, desc="train", dynamic_ncols=True)
    with open(out / "metrics.jsonl", "a") if rt.is_main else _nowhere() as log:
        for step in range(start, batching.steps):
            t0 = time.perf_counter()
            record = _step(run, step)
            rows = run.stream.rows(*batching.step_rows(step))
            for source, count in run.corpus.tokens_by_source(rows).items():
                tokens[source] = tokens.get(source, 0) + count
            seconds = time.perf_counter() - t0
            run.loop_s += seconds
            step_tokens = sum(int(run.corpus.lengths[i]) for r in rows for i in r)
            record.update(step=step + 1, tokens=sum(tokens.values()), tokens_per_s=step_tokens / seconds,
                          passes=run.stream.passes_done(batching.step_rows(step)[1]),
                          **{f"tokens/{s}": n for s, n in tokens.items()})
            run.losses.append(record["loss"])
            if run.stopper is not None and run.stopper.due(step + 1):
                record["val_loss"] = run.validation.loss(run.model, rt.device)
                run.stopper.observe(step + 1, record["val_loss"])
            if rt.is_main:
                log.write(json.dumps(record) + "\n")
                log.flush()
                if tracker is not None:
                    tracker(dict(record), step + 1)
                _report(bar, record, batching.steps, train.log_every, show)
            if ((stop is not None and _ask(stop, run, step + 1))
                or (run.stopper and run.stopper.done(step + 1))):
                run.stopped_at = step + 1
                break
            if (step + 1) % train.checkpoint_every == 0 and step + 1 < batching.steps:
                checkpoints.save(rt, out, step + 1, batching.steps)
    bar.close()
    if run.validation is not None:  # with the packed attention the rows need
        run.final_val_loss = run.validation.loss(run.model, rt.device)


def _ask(stop: StopRule, run: _Run, step: int) -> bool:
    """Run a stop rule (single process: the model is not wrapped) with the model's own attention, so
    it may generate with padding and a cache, which packed attention does not handle."""
    packed = run.model.config._attn_implementation
    run.model.set_attn_implementation(run.saved_attention)
    try:
        return stop(run.model, step)
    finally:
        run.model.set_attn_implementation(packed)


class _nowhere:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _report(bar, record: dict, steps: int, every: int, show: bool) -> None:
    if show:
        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", refresh=False)
        bar.update(1)
    elif record["step"] % every == 0 or record["step"] == steps:
        print(f"step {record['step']}/{steps} loss {record['loss']:.4f} lr {record['lr']:.3e} "
              f"tok/s {record['tokens_per_s']:.0f}", flush=True)


def _tokens_until(run: _Run, step: int) -> dict[str, int]:
    """Tokens per source in the rows of steps before ``step`` (a pure function of the stream)."""
    return run.corpus.tokens_by_source(run.stream.rows(0, step * run.batching.global_batch_size))


def _step(run: _Run, step: int) -> dict:
    """One optimizer step over the global batch; returns the step's metrics (same on every rank)."""
    rt, batching, train, kd = run.rt, run.batching, run.job.train, run.job.train.kd
    lr = lr_at(step, batching, train) * (run.stopper.lr_factor(step) if run.stopper else 1.0)
    for group in run.raw_optimizer.param_groups:
        group["lr"] = lr
    denom = max(run.corpus.loss_weight(run.stream.rows(*batching.step_rows(step))), 1e-12)
    scale = batching.world_size * batching.accumulation / denom  # undoes the mean over ranks and micro-steps
    sums, norm = [0.0, 0.0, 0.0], None
    for micro in range(batching.accumulation):
        batch = _micro_batch(run, step, micro)
        with rt.accumulate(run.model):
            total, ce, kl = _micro_loss(run, batch, kd)
            rt.backward(total * scale)
            if rt.sync_step:
                norm = rt.clip(run.model, train.max_grad_norm)
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
        sums = [sums[0] + total.item(), sums[1] + ce, sums[2] + kl]
    total, ce, kl = (v / denom for v in rt.sum(sums))
    record = {"loss": total, "lr": lr}
    if kd.weight > 0:
        record.update(ce=ce, kl=kl)
    if norm is not None:
        record["grad_norm"] = norm
    return record


def _micro_batch(run: _Run, step: int, micro: int) -> Packed:
    rows = run.stream.rows(*run.batching.micro_rows(step, micro, run.rt.rank))
    c = run.corpus
    return collate(rows, c.ids, c.n_prompt, c.weights, c.source_index, run.tokenizer.pad_token_id, c.topk,
                   learn=c.learn)  # first_error rows: no loss from the first wrong step on


def _padding_waste(run: _Run, steps: int) -> float:
    """Padded / computed slots over the run's micro-batches (each is as wide as its fullest row)."""
    batching, lengths = run.batching, run.corpus.lengths
    padded = computed = 0
    for step in range(steps):
        for micro in range(batching.accumulation):
            for rank in range(batching.world_size):
                fills = [sum(int(lengths[i]) for i in r)
                         for r in run.stream.rows(*batching.micro_rows(step, micro, rank))]
                computed += max(fills) * len(fills)
                padded += max(fills) * len(fills) - sum(fills)
    return padded / computed if computed else 0.0


def _micro_loss(run: _Run, batch: Packed, kd) -> tuple[torch.Tensor, float, float]:
    """Weighted sum of token losses of one micro-batch, and its CE and KL parts (floats)."""
    device = run.rt.device
    inputs = {"input_ids": batch.input_ids.to(device), "position_ids": batch.position_ids.to(device)}
    # attention_mask=None + reset position ids: each example attends to itself only, either through
    # attention.py or (models it does not support) through transformers' block-diagonal sdpa mask
    logits = run.model(**inputs, use_cache=False).logits
    select = (batch.targets != IGNORE).to(device)
    logits = logits[select]
    targets, weights = batch.targets.to(device)[select], batch.weights.to(device)[select]
    ce = losses.cross_entropy(logits, targets)
    kl, has_teacher = _kl(run, batch, inputs, select, logits, kd)
    total = (losses.mix(ce, kl, kd.weight, has_teacher) * weights).sum()
    ce_sum = float((ce.detach() * weights).sum())
    if kl is None:
        return total, ce_sum, 0.0
    kl_weights = weights if has_teacher is None else weights * has_teacher
    return total, ce_sum, float((kl.detach() * kl_weights).sum())


def _kl(run: _Run, batch: Packed, inputs: dict, select: torch.Tensor, logits: torch.Tensor, kd):
    if kd.weight == 0:
        return None, None
    if kd.source == "online":
        with torch.no_grad():
            teacher = run.teacher(**inputs, use_cache=False).logits[select]
        if teacher.shape[-1] < logits.shape[-1]:
            raise ValueError(f"teacher vocabulary {teacher.shape[-1]} is smaller than the student's "
                             f"{logits.shape[-1]}")
        return losses.kl_full(logits, teacher[:, : logits.shape[-1]], kd.kind, kd.temperature), None
    if batch.topk_ids is None:  # no stored teacher data in this micro-batch
        return None, None
    device = logits.device
    ids, lp = batch.topk_ids.to(device)[select], batch.topk_logprobs.to(device)[select]
    mask = batch.topk_mask.to(device)[select]
    return losses.kl_topk(logits, ids, lp, kd.kind, kd.temperature), mask


def _result(run: _Run, start: int, wall_s: float, used_attention: str) -> TrainResult:
    rt, batching, c = run.rt, run.batching, run.corpus
    steps = run.stopped_at or batching.steps
    rows = run.stream.rows(0, steps * batching.global_batch_size)
    per_source = c.tokens_by_source(rows)
    tokens = sum(per_source.values())
    trained = sum(per_source.values()) - sum(_tokens_until(run, start).values())
    head, tail = run.losses[:5], run.losses[-5:]
    return TrainResult(
        steps=steps, tokens=tokens, tokens_per_source=per_source,
        examples=sum(len(r) for r in rows), passes=run.stream.passes_done(len(rows)),
        final_loss=run.losses[-1] if run.losses else math.nan, loss_head=head, loss_tail=tail,
        wall_s=wall_s, tokens_per_s=trained / run.loop_s if run.loop_s > 0 else 0.0,
        padding_waste=_padding_waste(run, steps), truncated=c.truncated,
        world_size=rt.world_size, devices=rt.describe(), resumed_from=start,
        extra={"backend": rt.backend, "accumulation": batching.accumulation, "threads": rt.threads,
               "attention": used_attention, **_early_stop_summary(run, steps)},
    )


def _early_stop_summary(run: _Run, steps: int) -> dict:
    """Where a run stopped and why, and its final held-out loss (the point on the curve is this model)."""
    if run.stopper is None:
        return {}
    return {"early_stop": {**run.stopper.summary(steps, run.batching.steps),
                           "final_val_loss": run.final_val_loss}}
