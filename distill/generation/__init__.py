"""Teacher generation at scale: backends (hf, vllm, openai), shards, resume, filters, provenance.

Importing this package does not import torch: backends load lazily (see ``backends.BACKENDS``); the
pipeline itself is imported on first use, so a dedup array task (``dedup_task``) starts with numpy only.
"""
from distill.generation.errors import GenerationError
from distill.generation.shards import shard_of

__all__ = ["GenerationError", "generate_shard", "merge_and_filter", "run_generation", "shard_of"]


def __getattr__(name: str):
    if name in ("generate_shard", "merge_and_filter", "run_generation"):
        from distill.generation import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'distill.generation' has no attribute {name!r}")
