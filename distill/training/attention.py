"""Attention over packed rows, one example at a time (a "varlen" attention built from plain sdpa).

A packed row holds several examples; each must attend causally within itself only. transformers
gives that with sdpa plus a block-diagonal ``(rows, 1, L, L)`` mask derived from reset position ids,
which still computes every ``L x L`` score and takes sdpa's masked (slow) path. Here instead the
tokens of each example are gathered into a batch of segments, attention runs as plain causal sdpa
(``is_causal=True``, no mask), and the outputs are scattered back. Work is ``sum(len_i ** 2)`` instead
of ``rows * L ** 2``; the result is the same (``tests/smoke/test_train.py`` compares both).

Segments are grouped by length (power-of-two buckets) so a long example does not pad every short
one to its length. Padding inside a bucket sits at the end of each segment, where causal attention
never lets a real token see it. Models with sliding windows or logit soft-capping keep transformers'
own attention (``supports``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

NAME = "distill_packed"


@dataclass(frozen=True)
class Layout:
    """Where each example's tokens sit: per bucket, ``(segments, width)`` flat token indices, and for
    every flat token its index in the concatenated bucket outputs."""

    groups: tuple[torch.Tensor, ...]
    inverse: torch.Tensor


def layout(position_ids: torch.Tensor) -> Layout:
    """Segments of a ``(rows, L)`` batch: a new one starts at each row start and wherever the position
    does not follow the previous one (the rule transformers uses to detect packed sequences)."""
    rows, length = position_ids.shape
    start = torch.ones_like(position_ids, dtype=torch.bool)
    start[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    starts = start.reshape(-1).nonzero().squeeze(1)
    lengths = torch.diff(starts, append=torch.tensor([rows * length], device=starts.device))
    buckets = torch.ceil(torch.log2(lengths.float())).long()
    groups, slot = [], torch.empty(rows * length, dtype=torch.long, device=position_ids.device)
    offset = 0
    for b in torch.unique(buckets).tolist():
        members = (buckets == b).nonzero().squeeze(1)
        width = int(lengths[members].max())
        steps = torch.arange(width, device=starts.device)
        idx = starts[members, None] + steps[None, :]
        valid = steps[None, :] < lengths[members, None]
        flat_slots = offset + torch.arange(idx.numel(), device=starts.device).reshape(idx.shape)
        slot[idx[valid]] = flat_slots[valid]
        groups.append(torch.where(valid, idx, starts[members, None]))  # padding reads a real token
        offset += idx.numel()
    return Layout(tuple(groups), slot)


_cache: dict = {}


def _layout_for(position_ids: torch.Tensor) -> Layout:
    """Every layer of one forward sees the same position ids: compute the layout once."""
    key = (position_ids.data_ptr(), tuple(position_ids.shape), position_ids._version)
    hit = _cache.get("entry")
    if hit is not None and hit[0] == key and torch.equal(hit[1], position_ids):
        return hit[2]
    value = layout(position_ids)
    _cache["entry"] = (key, position_ids.clone(), value)
    return value


def packed_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask, scaling: float | None = None, dropout: float = 0.0, **kwargs):
    """transformers attention interface: inputs ``(B, H, L, D)``, output ``(B, L, H, D)``."""
    position_ids = kwargs.get("position_ids")
    batch, heads, length, dim = query.shape
    if key.shape[2] != length or attention_mask is not None:
        raise ValueError(f"{NAME} attention is for packed training rows only (no cache, no padding mask); "
                         f"switch the model back to its own attention to generate")
    if position_ids is None:
        position_ids = torch.arange(length, device=query.device).expand(batch, -1)
    position_ids = position_ids.expand(batch, -1)
    segments = _layout_for(position_ids)
    q, k, v = (t.transpose(1, 2).reshape(batch * length, t.shape[1], dim) for t in (query, key, value))
    outputs = []
    for idx in segments.groups:
        qs, ks, vs = (t[idx].transpose(1, 2) for t in (q, k, v))  # (segments, heads, width, dim)
        out = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scaling, dropout_p=dropout,
                                             enable_gqa=ks.shape[1] != qs.shape[1])
        outputs.append(out.transpose(1, 2).reshape(-1, heads, dim))
    merged = torch.cat(outputs)[segments.inverse]
    return merged.reshape(batch, length, heads, dim), None


def supports(config) -> bool:
    """Plain full causal attention only: no sliding window, no soft-capping, no cache-time tricks."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True):
        return False
    if getattr(text, "attn_logit_softcapping", None) or getattr(text, "layer_types", None) and any(
            t != "full_attention" for t in text.layer_types):
        return False
    return getattr(text, "_attn_implementation", "sdpa") in ("sdpa", "eager")


def register() -> str:
    """Make ``NAME`` a transformers attention implementation (with no mask: segments replace it)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, packed_attention)
    AttentionMaskInterface.register(NAME, lambda *args, **kwargs: None)
    return NAME
