"""Budgets, batch arithmetic and the learning-rate schedule. Pure functions.

Budgets are global and counted in packed rows of ``seq_len`` tokens:

- ``train.tokens``: steps = ceil(tokens / (global_batch_size * seq_len)). The token count is row
  capacity, padding included (packing keeps padding to a few percent), so every mix size gets
  the same compute whatever its examples' lengths. A small mix is read several times.
- ``train.epochs``: steps = ceil(epochs * R / global_batch_size), where R is the number of rows one
  pass over the data packs into. Passes follow one another without a flush, so a run reads
  ``epochs`` passes to within one global batch; the last step is always a full batch.

Gradient accumulation is derived, never configured:
``global_batch_size = micro_batch_size * world_size * accumulation``, and must divide exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from distill.recipe.schema import Train


@dataclass(frozen=True)
class Batching:
    """How one run's global batches map onto ranks and micro-batches."""

    steps: int
    world_size: int
    accumulation: int
    micro_batch_size: int
    global_batch_size: int
    warmup_steps: int

    def micro_rows(self, step: int, micro: int, rank: int) -> tuple[int, int]:
        """[start, stop) in the row stream of one rank's micro-batch ``micro`` at ``step``."""
        start = step * self.global_batch_size + (micro * self.world_size + rank) * self.micro_batch_size
        return start, start + self.micro_batch_size

    def step_rows(self, step: int) -> tuple[int, int]:
        return step * self.global_batch_size, (step + 1) * self.global_batch_size


def accumulation(global_batch_size: int, micro_batch_size: int, world_size: int) -> int:
    per_pass = micro_batch_size * world_size
    if global_batch_size % per_pass:
        raise ValueError(
            f"train.global_batch_size={global_batch_size} is not a multiple of "
            f"micro_batch_size={micro_batch_size} x world_size={world_size}"
        )
    return global_batch_size // per_pass


def total_steps(train: Train, rows_per_pass: int) -> int:
    if train.tokens is not None:
        return max(1, math.ceil(train.tokens / (train.global_batch_size * train.seq_len)))
    return max(1, math.ceil(train.epochs * rows_per_pass / train.global_batch_size))


def make_batching(train: Train, rows_per_pass: int, world_size: int) -> Batching:
    steps = total_steps(train, rows_per_pass)
    return Batching(
        steps=steps,
        world_size=world_size,
        accumulation=accumulation(train.global_batch_size, train.micro_batch_size, world_size),
        micro_batch_size=train.micro_batch_size,
        global_batch_size=train.global_batch_size,
        warmup_steps=math.ceil(train.warmup_ratio * steps),
    )


def lr_at(step: int, batching: Batching, train: Train) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then the schedule's decay.

    Warmup reaches the peak at its last step; cosine and linear decay towards 0 and reach it one
    step after the last one (so no step trains at lr 0).
    """
    if step < batching.warmup_steps:
        return train.lr * (step + 1) / batching.warmup_steps
    if train.schedule == "constant":
        return train.lr
    progress = (step - batching.warmup_steps) / max(1, batching.steps - batching.warmup_steps)
    if train.schedule == "linear":
        return train.lr * (1.0 - progress)
    return train.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
