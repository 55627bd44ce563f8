"""Token-level losses: cross-entropy and knowledge distillation (forward / reverse KL). Pure.

Every function takes the logits of the positions that carry a loss only, shaped ``(N, V)``, and
returns one value per position (``(N,)``, float32); weighting and normalisation are the caller's.

KD from a full teacher distribution (online teacher) is exact:
``forward KL(p || q) = sum_v p_v (log p_v - log q_v)``, ``reverse KL(q || p) = sum_v q_v (log q_v - log p_v)``
with ``p = softmax(teacher / T)``, ``q = softmax(student / T)``, scaled by ``T**2`` (Hinton et al.) so
the gradient size does not shrink with the temperature.

KD from stored top-k log-probs is an approximation: both distributions are restricted to the
teacher's top-k support S and renormalised there (``p~ = p / p(S)``, ``q~ = q / q(S)``), and the KL is
taken between ``p~`` and ``q~``. It ignores the teacher mass outside S (small when k covers most of
it) and says nothing about student mass outside S: the cross-entropy term keeps that in check.
Tempered stored log-probs are ``log p / T`` renormalised over S, which equals the tempered teacher
restricted to S exactly.

Preference losses take per-sequence completion log-probs (``completion_logps``: summed over the
completion tokens only, as TRL's ``DPOTrainer`` does) of the policy and of a frozen reference, and
return one value per (chosen, rejected) pair: DPO's sigmoid loss ``-log sigmoid(beta * (r_c - r_r))``
and APO-zero's ``(1 - sigmoid(beta * r_c)) + sigmoid(beta * r_r)``, with ``r = logp_policy - logp_ref``.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Kind = Literal["forward", "reverse"]
Objective = Literal["dpo", "apo"]


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), targets, reduction="none")


def _kl(log_p: torch.Tensor, log_q: torch.Tensor, kind: Kind) -> torch.Tensor:
    """KL between two normalised log-distributions over the last axis; p is the teacher."""
    if kind == "forward":
        p = log_p.exp()
        return (p * (log_p - log_q)).sum(-1)
    if kind == "reverse":
        q = log_q.exp()
        return (q * (log_q - log_p)).sum(-1)
    raise ValueError(f"kd.kind={kind!r}: expected 'forward' or 'reverse'")


def kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: Kind = "forward",
            temperature: float = 1.0) -> torch.Tensor:
    """Exact KL between full tempered distributions; the vocabularies must match."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: student and teacher need one vocabulary")
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return _kl(log_p, log_q, kind) * temperature**2


def kl_topk(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor,
            kind: Kind = "forward", temperature: float = 1.0) -> torch.Tensor:
    """KL restricted to the teacher's stored top-k support, both sides renormalised there."""
    log_p = F.log_softmax(topk_logprobs.float() / temperature, dim=-1)
    log_q = F.log_softmax(student_logits.float().gather(-1, topk_ids) / temperature, dim=-1)
    return _kl(log_p, log_q, kind) * temperature**2


def mix(ce: torch.Tensor, kl: torch.Tensor | None, kd_weight: float,
        has_teacher: torch.Tensor | None = None) -> torch.Tensor:
    """``(1 - w) * CE + w * KL`` per position; positions without a teacher keep plain CE."""
    if kl is None or kd_weight == 0.0:
        return ce
    mixed = (1.0 - kd_weight) * ce + kd_weight * kl
    return mixed if has_teacher is None else torch.where(has_teacher, mixed, ce)


def completion_logps(logits: torch.Tensor, labels: torch.Tensor, ignore: int = -100) -> torch.Tensor:
    """Per sequence: the sum of log p(token) over positions whose label is not ``ignore``.

    ``logits`` (B, T, V) are the model's outputs for ``input_ids`` (B, T); ``labels`` are those ids with
    prompt and padding set to ``ignore``; position t predicts token t + 1.
    """
    targets = labels[:, 1:]
    keep = targets != ignore
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(-1)


def preference(objective: Objective, chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor,
               ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """One loss per pair from sequence log-probs of policy and reference (see the module doc)."""
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    if objective == "dpo":
        return -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
    if objective == "apo":  # APO-zero (D'Oosterlinck et al. 2024, eq. 7): chosen up, rejected down
        return (1 - torch.sigmoid(beta * chosen_ratio)) + torch.sigmoid(beta * rejected_ratio)
    raise ValueError(f"objective={objective!r}: expected 'dpo' or 'apo'")
