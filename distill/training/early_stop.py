"""Early stopping on held-out loss, then a short anneal (``train.early_stop``).

``Stopper`` is the pure state machine: it sees the validation loss of each check and says how the
learning rate is scaled and when training ends. Its whole state follows from the checks, so a
resumed run rebuilds it by replaying the ``val_loss`` records of ``metrics.jsonl``.

``ValidationSet`` measures the loss: the mean cross-entropy per completion token over a fixed,
packed set of held-out rows. Every rank computes the whole set on identical weights (ZeRO-3 gathers
them collectively, so every rank must take part anyway), hence every rank sees the same loss and
takes the same decision without any extra communication.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from distill.recipe.schema import EarlyStop
from distill.training import losses
from distill.training.data import load_corpus
from distill.training.packing import IGNORE, collate, pack


@dataclass
class Stopper:
    cfg: EarlyStop
    checks: list[tuple[int, float]] = field(default_factory=list)  # (optimizer steps done, val loss)
    best: float = math.inf
    best_step: int = 0
    bad: int = 0  # checks since the last improvement
    cooldown_start: int | None = None  # step at which patience ran out
    end: int | None = None  # step count at which training ends

    def due(self, steps_done: int) -> bool:
        return self.cooldown_start is None and steps_done % self.cfg.every == 0

    def observe(self, steps_done: int, loss: float) -> None:
        self.checks.append((steps_done, loss))
        if loss < self.best - self.cfg.min_delta:
            self.best, self.best_step, self.bad = loss, steps_done, 0
        else:
            self.bad += 1
        if self.cooldown_start is None and self.bad >= self.cfg.patience:
            self.cooldown_start = steps_done
            self.end = steps_done + math.ceil(self.cfg.cooldown * steps_done)

    def lr_factor(self, step: int) -> float:
        """Scale of optimizer step ``step`` (0-based): 1, then linear towards 0 over the cooldown."""
        if self.cooldown_start is None or step < self.cooldown_start:
            return 1.0
        return max(0.0, (self.end - step) / (self.end - self.cooldown_start + 1))

    def done(self, steps_done: int) -> bool:
        return self.end is not None and steps_done >= self.end

    def summary(self, steps_done: int, cap: int) -> dict:
        return {"stopped_at": steps_done, "cap": cap,
                "reason": "patience" if self.done(steps_done) else "cap",
                "best_step": self.best_step, "best_val_loss": self.best,
                "cooldown_start": self.cooldown_start,
                "checks": len(self.checks)}


def replay(cfg: EarlyStop, records: list[dict]) -> Stopper:
    """The stopper of a resumed run: the checks its metrics already hold, in order."""
    stopper = Stopper(cfg)
    for r in records:
        if "val_loss" in r:
            stopper.observe(r["step"], r["val_loss"])
    return stopper


class ValidationSet:
    """Held-out rows packed once; ``loss(model)`` is their mean per-token cross-entropy."""

    def __init__(self, path: str, tokenizer, seq_len: int, rows_per_batch: int, pad_id: int):
        corpus = load_corpus(path, tokenizer, seq_len)
        rows = pack(corpus.lengths, seq_len)
        ones = [1.0] * len(corpus.ids)
        self.batches = [collate(rows[i:i + rows_per_batch], corpus.ids, corpus.n_prompt, ones,
                                corpus.source_index, pad_id) for i in range(0, len(rows), rows_per_batch)]

    @torch.no_grad()
    def loss(self, model: torch.nn.Module, device: torch.device) -> float:
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        for batch in self.batches:
            logits = model(input_ids=batch.input_ids.to(device), position_ids=batch.position_ids.to(device),
                           use_cache=False).logits
            select = (batch.targets != IGNORE).to(device)
            total += float(losses.cross_entropy(logits[select], batch.targets.to(device)[select]).sum())
            count += int(select.sum())
        model.train(was_training)
        return total / max(count, 1)
