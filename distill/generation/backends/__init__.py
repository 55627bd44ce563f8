"""Backend registry: a name -> constructor table with a "did you mean" error.

Backends are imported only when asked for: ``hf`` pulls in transformers, ``vllm`` needs vLLM (CUDA),
``openai`` only httpx. ``serve`` is not a backend but the other side of ``openai``: ``distill serve``
puts the ``hf`` backend behind the OpenAI completions API (``openai`` starts it on loopback when
``generation.openai.base_url`` is unset).
"""
from __future__ import annotations

import difflib
import importlib

from distill.generation.backends.base import Backend, Completion, Request, Sampling, requests_for, row_seed
from distill.generation.errors import GenerationError
from distill.recipe.schema import Generation, ModelSpec

BACKENDS = {
    "hf": "distill.generation.backends.hf:HFBackend",
    "openai": "distill.generation.backends.openai:OpenAIBackend",
    "vllm": "distill.generation.backends.vllm:VLLMBackend",
}

__all__ = ["BACKENDS", "Backend", "Completion", "Request", "Sampling", "make_backend", "requests_for",
           "row_seed"]


def backend_class(name: str) -> type:
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, BACKENDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise GenerationError(f"unknown generation backend {name!r} (known: {', '.join(BACKENDS)}){hint}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_backend(name: str, teacher: ModelSpec, gen: Generation, **options) -> Backend:
    """Build backend ``name`` for ``teacher``; ``options`` go to its constructor (e.g. ``device``)."""
    return backend_class(name)(teacher, gen, **options)
