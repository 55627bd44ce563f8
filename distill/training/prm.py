"""A small step scorer (process reward model): a Llama-style token classifier with one logit per
position, trained with binary cross-entropy at the last token of every labelled step.

A solution is ``prompt + completion``, its steps separated by ``;`` (the embedded world's format).
``step_ends`` finds each step's last token from the fast tokenizer's character offsets, so the
scorer reads the whole prefix up to and including a step before judging it (Lightman et al. 2023
score a step at its end token the same way). Labels come from ``distill.human.verifier``: 1 good,
0 bad, None unlabelled (no loss there). Scores are the sigmoid of the logit: P(step is good).
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SEP = ";"


@dataclass(frozen=True)
class PRMTrain:
    """How the scorer trains: the number of optimizer steps, pairs of batch and rate, and its seed."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0


def step_ends(tokenizer, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt + completion`` and, per step of the completion, the index of its last token."""
    text = prompt + completion
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends, pos = [], len(prompt)
    for step in completion.split(SEP) if completion else []:
        pos += len(step)
        # the last token whose span ends at or before the step's end (a token never spans a ';' here)
        ends.append(max(i for i, (_, stop) in enumerate(enc["offset_mapping"]) if stop <= pos))
        pos += len(SEP)
    return list(enc["input_ids"]), ends


def _batch(tokenizer, items: Sequence[tuple[str, str, Sequence[int | None]]]):
    """Right-padded ids and mask, and the (row, position, label) of every labelled step."""
    encoded = [step_ends(tokenizer, p, c) for p, c, _ in items]
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(items), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    rows, cols, labels = [], [], []
    for r, ((seq, ends), (_, _, labs)) in enumerate(zip(encoded, items)):
        ids[r, : len(seq)], mask[r, : len(seq)] = torch.tensor(seq), 1
        for end, lab in zip(ends, labs):
            if lab is not None:
                rows.append(r), cols.append(end), labels.append(float(lab))
    return ids, mask, (torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long),
                       torch.tensor(labels))


def train_prm(model, tokenizer, items: Sequence[tuple[str, str, Sequence[int | None]]],
              cfg: PRMTrain) -> list[float]:
    """Train ``model`` in place on ``(prompt, completion, step labels)``; returns the loss per step."""
    if not any(lab is not None for _, _, labs in items for lab in labs):
        raise ValueError("the step scorer has no labelled step to learn from")
    rng = random.Random(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    model.train()
    losses, order = [], []
    for step in range(cfg.steps):
        while len(order) < cfg.batch_size:  # pass after pass, each in a fresh seeded order
            order += rng.sample(range(len(items)), len(items))
        chosen, order = order[: cfg.batch_size], order[cfg.batch_size:]
        ids, mask, (rows, cols, labels) = _batch(tokenizer, [items[i] for i in chosen])
        if len(labels) == 0:
            continue
        for group in optimizer.param_groups:  # linear decay to 0: a short run ends settled
            group["lr"] = cfg.lr * (1 - step / cfg.steps)
        logits = model(input_ids=ids, attention_mask=mask).logits[..., 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[rows, cols], labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def score_steps(model, tokenizer, pairs: Sequence[tuple[str, str]],
                batch_size: int = 128) -> list[list[float]]:
    """P(good) of every step of each ``(prompt, completion)``."""
    model.eval()
    out: list[list[float]] = []
    for start in range(0, len(pairs), batch_size):
        chunk = [(p, c, [1] * len(c.split(SEP))) for p, c in pairs[start: start + batch_size]]
        ids, mask, (rows, cols, _) = _batch(tokenizer, chunk)
        probs = torch.sigmoid(model(input_ids=ids, attention_mask=mask).logits[..., 0])[rows, cols].tolist()
        for _, c, labs in chunk:
            out.append(probs[: len(labs)])
            probs = probs[len(labs):]
    return out
