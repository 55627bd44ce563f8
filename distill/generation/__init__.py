"""Teacher generation at scale: backends (hf, vllm, openai), shards, resume, filters, provenance.

Importing this package does not import torch: backends load lazily (see ``backends.BACKENDS``).
"""
from distill.generation.errors import GenerationError
from distill.generation.pipeline import generate_shard, merge_and_filter, run_generation
from distill.generation.shards import shard_of

__all__ = ["GenerationError", "generate_shard", "merge_and_filter", "run_generation", "shard_of"]
