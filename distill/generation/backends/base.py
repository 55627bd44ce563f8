"""The one interface every backend implements, and the one output schema they all return.

A backend turns ``Request``s (a prompt, its id, a sample index and a per-row seed) into
``Completion``s. Seeds are derived from (recipe seed, prompt id, sample index) only, so what a row
gets never depends on which batch, chunk or shard it ran in.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from distill.recipe.schema import Generation


@dataclass(frozen=True, slots=True)
class Request:
    id: str  # the prompt id
    sample: int  # 0 .. samples_per_prompt-1
    prompt: str
    seed: int  # per-row sampling seed, see ``row_seed``


@dataclass(frozen=True, slots=True)
class Sampling:
    """Decoding parameters shared by one call; temperature 0 means greedy."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    logprobs_topk: int = 0  # >0: per completion token, the teacher's top-k ids and log-probs

    @classmethod
    def from_config(cls, gen: Generation) -> Sampling:
        return cls(gen.max_new_tokens, gen.temperature, gen.top_p, gen.logprobs_topk)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(slots=True)
class Completion:
    """One generated sample. ``n_tokens`` counts generated tokens including a final EOS; the text
    excludes it. ``topk_*`` (and ``token_ids``/``token_logprobs``) have one entry per generated token,
    the EOS included, when log-probs were asked for."""

    id: str
    sample: int
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (EOS) or "length" (max_new_tokens)
    prompt_tokens: int | None = None
    token_ids: list[int] | None = None
    token_logprobs: list[float] | None = None
    topk_ids: list[list[int]] | None = None
    topk_logprobs: list[list[float]] | None = None


class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """Completions in the order of ``requests``."""

    def describe(self) -> dict:
        """What produced the outputs (model, revision, server ...), for provenance and resume checks."""

    def close(self) -> None: ...


def row_seed(seed: int, prompt_id: str, sample: int) -> int:
    """A 63-bit seed from (recipe seed, prompt id, sample index): fits torch, vLLM and OpenAI's int64."""
    digest = hashlib.sha256(f"{seed}/{prompt_id}/{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def requests_for(rows: Sequence[dict], samples: int, seed: int) -> list[Request]:
    """``samples`` requests per prompt row, each with its own seed."""
    return [Request(r["id"], s, r["prompt"], row_seed(seed, r["id"], s)) for r in rows
            for s in range(samples)]
