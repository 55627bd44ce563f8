"""Generation backends by name (``GENERATION_BACKENDS`` in distill/registry.py), with a "did you mean" error.

Backends are imported only when asked for: ``hf`` pulls in transformers, ``vllm`` needs vLLM (CUDA),
``openai`` only httpx. ``serve`` is not a backend but the other side of ``openai``: ``distill serve``
puts the ``hf`` backend behind the OpenAI completions API (``openai`` starts it on loopback when
``generation.openai.base_url`` is unset).
"""
from __future__ import annotations

from distill.generation.backends.base import Backend, Completion, Request, Sampling, requests_for, row_seed
from distill.generation.errors import GenerationError
from distill.recipe.schema import Generation, ModelSpec
from distill.registry import GENERATION_BACKENDS

BACKENDS = GENERATION_BACKENDS  # the table lives with the other vocabularies (distill/registry.py)

__all__ = ["BACKENDS", "Backend", "Completion", "Request", "Sampling", "make_backend", "requests_for",
           "row_seed"]


def backend_class(name: str) -> type:
    try:
        return BACKENDS.load(name)
    except ValueError as err:
        raise GenerationError(str(err)) from None


def make_backend(name: str, teacher: ModelSpec, gen: Generation, **options) -> Backend:
    """Build backend ``name`` for ``teacher``; ``options`` go to its constructor (e.g. ``device``)."""
    return backend_class(name)(teacher, gen, **options)
