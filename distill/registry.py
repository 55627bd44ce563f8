"""Every vocabulary a recipe names, one registry each: name -> implementation, with one "did you mean".

A registry maps each name to the ``"module:attr"`` of its implementation, imported on first use
(lm-eval's ``registry.py`` keeps the same kind of table): the recipe schema builds its ``Literal``s
from the names here without importing torch, vLLM or the stage packages, which sit above it.

Adding a name is one line in its table plus the implementation's own module. What that module must
provide is said beside each table; ``tests/unit/test_registry.py`` imports every entry.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal


def did_you_mean(name: str, known: Iterable[str], *, n: int = 1, list_known: bool = True) -> str:
    """`` (did you mean 'x'?)`` for the close known names, else `` (known: a, b)`` (or "" when the
    known names are too many to list)."""
    known = sorted(dict.fromkeys(known))
    close = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return f" (known: {', '.join(known)})" if list_known else ""


class Registry(Mapping[str, str]):
    """One vocabulary: its names, in a fixed order, and where each one's implementation lives."""

    def __init__(self, what: str, table: Mapping[str, str | None]):
        self.what = what
        self._table = dict(table)

    def __getitem__(self, name: str) -> str:
        return self._table[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._table)

    def literal(self) -> Any:
        """``Literal[name, ...]``: the recipe field that takes one of these names."""
        return Literal[self.names]

    def check(self, name: str) -> str:
        """``name``, or a ValueError naming it, the close known names, or all of them."""
        if name not in self._table:
            raise ValueError(f"unknown {self.what} {name!r}{did_you_mean(name, self._table)}")
        return name

    def load(self, name: str) -> Any:
        """The implementation of ``name`` (imported now)."""
        path = self._table[self.check(name)]
        if path is None:
            raise ValueError(f"{self.what} {name!r} is a name only, with no implementation to load")
        module, _, attr = path.partition(":")
        return getattr(importlib.import_module(module), attr)


# A backend: a class taking (teacher: ModelSpec, generation: Generation, **options), with the methods of
# distill/generation/backends/base.py's Backend. Options of its own go in a recipe section
# generation.<name> (schema.py), as vllm's and openai's do.
GENERATION_BACKENDS = Registry("generation backend", {
    "hf": "distill.generation.backends.hf:HFBackend",
    "vllm": "distill.generation.backends.vllm:VLLMBackend",
    "openai": "distill.generation.backends.openai:OpenAIBackend",
})

# A human-effort primitive: the origin of the source rows an expert's work on teacher drafts makes,
# and the human part of an arm (mixes.arms[].human). Its value is the primitive's one declaration, a
# distill/human/primitives.py Primitive (rows, simulated action, tool questions, model prompt, pairs).
HUMAN_PRIMITIVES = Registry("human-effort primitive", {
    "edited": "distill.human.edited:PRIMITIVE",
    "first_error": "distill.human.first_error:PRIMITIVE",
    "picked": "distill.human.picked:PRIMITIVE",
})

# A world kind: a function world -> Task (distill/world/task.py). Its recipe section is a model in
# schema.py whose `kind` is the name (the World union there).
WORLD_KINDS = Registry("world kind", {
    "arithmetic": "distill.world:arithmetic_task",
    "dataset": "distill.world.datasets:dataset_task",
    "reasoning_gym": "distill.world.reasoning_gym:reasoning_gym_task",
})

# A task adapter of a dataset world: an Adapter (distill/world/adapters.py) that reads a dataset's rows.
TASK_ADAPTERS = Registry("task adapter", {
    "gsm8k": "distill.world.adapters:GSM8K",
    "metamath": "distill.world.adapters:METAMATH",
})

# The per-stage Slurm resource keys distill/slurm.py writes as #SBATCH options (names only).
SLURM_RESOURCE_KEYS = Registry("Slurm resource key", dict.fromkeys((
    "partition", "account", "qos", "nodes", "ntasks_per_node", "cpus_per_task", "gpus", "mem", "time",
    "extra")))
