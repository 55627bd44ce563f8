"""How many training processes a step runs, and on which nodes: read from what the step was given.

A step's processes come from its allocation, never from the accelerate YAML's ``num_processes``
(a placeholder there): under Slurm, the job's nodes (``SLURM_NNODES``) and one process per GPU it
got on each (``SLURM_GPUS_ON_NODE``); on this machine, the visible GPUs. A recipe setting
(``launcher.slurm.<stage>.processes_per_node``, ``launcher.processes``; or the environment variable
``DISTILL_PROCESSES_PER_NODE``) overrides the device count, e.g. for CPU processes.
``check_resources`` refuses recipes whose resources cannot work, before anything runs (``distill validate``
and ``distill run`` call it). Pure: no torch import.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.recipe.loading import load_yaml_text, read_text_file
from distill.recipe.schema import Recipe, Resources
from distill.runtime import visible_gpus

_KINDS = ("NO", "MULTI_GPU", "MULTI_CPU", "DEEPSPEED")
_DS_KEYS = {"zero_stage", "offload_optimizer_device", "offload_param_device", "zero3_init_flag",
            "zero3_save_16bit_model", "deepspeed_config_file", "deepspeed_multinode_launcher"}


@dataclass(frozen=True)
class Allocation:
    """The processes of one training step: ``nodes`` x ``processes_per_node``."""

    processes_per_node: int = 1
    nodes: int = 1

    @property
    def processes(self) -> int:
        return self.nodes * self.processes_per_node


def from_environment(env: Mapping[str, str] | None = None, requested: int | None = None) -> Allocation:
    """The allocation of the step running in ``env``: Slurm's when inside a job, else this machine's.

    ``requested`` (the recipe's processes per node, else ``DISTILL_PROCESSES_PER_NODE``) wins over
    the device count; without it a node runs one process per GPU it was given, or one without GPUs.
    """
    env = os.environ if env is None else env
    if requested is None and env.get("DISTILL_PROCESSES_PER_NODE", "").isdigit():
        requested = int(env["DISTILL_PROCESSES_PER_NODE"])
    if "SLURM_JOB_ID" in env:
        nodes = int(env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES") or 1)
        gpus = _slurm_gpus(env)
    else:
        nodes, gpus = 1, visible_gpus(env)
    return Allocation(processes_per_node=requested or gpus or 1, nodes=nodes)


def _slurm_gpus(env: Mapping[str, str]) -> int:
    if env.get("SLURM_GPUS_ON_NODE", "").isdigit():
        return int(env["SLURM_GPUS_ON_NODE"])
    return visible_gpus(env) if env.get("CUDA_VISIBLE_DEVICES") is not None else 0


# ----------------------------------------------------------------------------- accelerate configs
def resolve_config(path: str | Path) -> Path:
    """A config path as given, or relative to distill's checkout (``recipes/accelerate/zero2.yaml``)."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    packaged = Path(__file__).resolve().parents[1] / path
    return packaged if packaged.exists() else path


def read_config(path: str | Path) -> dict[str, Any]:
    path = resolve_config(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"accelerate config {str(path)!r} does not exist")
    # a folder, pipe, binary or broken YAML file: one line naming it and the YAML line, not a traceback
    config = load_yaml_text(read_text_file(path, "YAML accelerate config"), str(path)) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: an accelerate config is a YAML mapping, got {type(config).__name__}")
    kind = config.get("distributed_type", "NO")
    if kind not in _KINDS:
        raise ValueError(f"{path}: distributed_type={kind!r} is not one of {', '.join(_KINDS)}")
    extra = set(config.get("deepspeed_config") or {}) - _DS_KEYS
    if extra:
        raise ValueError(f"{path}: deepspeed_config keys {sorted(extra)} are not supported here "
                         f"(gradient accumulation and clipping come from the training config)")
    return config


# ----------------------------------------------------------------------------- recipe checks
def slurm_allocation(res: Resources) -> Allocation:
    """The allocation a Slurm stage with these resources gets (one process per GPU by default)."""
    return Allocation(processes_per_node=res.processes_per_node or res.gpus_per_node or 1, nodes=res.nodes)


def resource_problems(recipe: Recipe, launcher: str | None = None) -> list[str]:
    """Why the recipe's resources cannot work, one ``key=value: reason`` line each (empty: fine).
    ``launcher`` (local or slurm) checks only the resources that launcher uses: a local run never
    reads ``launcher.slurm``, so its Slurm section cannot block it (None: both)."""
    problems: list[str] = []
    cfg_key = f"train.accelerate_config={recipe.train.accelerate_config}"
    kind = "NO"
    if recipe.train.accelerate_config:
        try:
            kind = read_config(recipe.train.accelerate_config).get("distributed_type", "NO")
        except (OSError, ValueError) as exc:
            return [f"{cfg_key}: {str(exc).splitlines()[0]}"]
    stages = {"launcher.slurm.train": recipe.launcher.slurm.train} if launcher in (None, "slurm") else {}
    for key, res in stages.items():
        if res.processes_per_node and res.gpus_per_node and res.processes_per_node != res.gpus_per_node:
            problems.append(f"{key}.processes_per_node={res.processes_per_node}: differs from "
                            f"gpus_per_node={res.gpus_per_node} (one training process per GPU)")
            continue
        alloc = slurm_allocation(res)
        if res.nodes > 1 and kind == "NO":
            problems.append(f"{key}.nodes={res.nodes}: multi-node training needs a distributed "
                            f"train.accelerate_config (ddp, zero2 or zero3), got {cfg_key.split('=')[1]}")
        elif alloc.processes > 1 and kind == "NO":
            problems.append(f"{key}.gpus_per_node={res.gpus_per_node}: {alloc.processes} processes but "
                            f"{cfg_key} trains in one; name a distributed config")
        problems += _batch_problems(recipe, f"{key}", alloc)
    local = recipe.launcher.processes if launcher in (None, "local") else None
    if local and local > 1 and kind == "NO":
        problems.append(f"launcher.processes={local}: several processes need a distributed "
                        f"train.accelerate_config, got {cfg_key.split('=')[1]}")
    elif local:
        problems += _batch_problems(recipe, "launcher", Allocation(processes_per_node=local))
    return problems + (_vllm_problems(recipe) if launcher in (None, "slurm") else [])


def _batch_problems(recipe: Recipe, key: str, alloc: Allocation) -> list[str]:
    t = recipe.train
    if alloc.processes > 1 and t.global_batch_size % (t.micro_batch_size * alloc.processes):
        return [(f"train.global_batch_size={t.global_batch_size}: not a multiple of micro_batch_size="
                 f"{t.micro_batch_size} x {alloc.processes} processes ({key})")]
    return []


def _vllm_problems(recipe: Recipe) -> list[str]:
    tp = recipe.generation.vllm.tensor_parallel_size
    if recipe.generation.backend != "vllm" or tp == 1:
        return []
    out = []
    for stage in ("generate", "ceiling"):
        res = getattr(recipe.launcher.slurm, stage) or recipe.launcher.slurm.generate
        if res.gpus_per_node and res.gpus_per_node < tp:
            out.append(f"launcher.slurm.{stage}.gpus_per_node={res.gpus_per_node}: fewer than "
                       f"generation.vllm.tensor_parallel_size={tp}")
    return out


def check_resources(recipe: Recipe, where: str, launcher: str | None = None) -> None:
    """Raise ``RecipeError`` (one line, naming the file and key) on the first problem."""
    from distill.recipe import RecipeError

    problems = resource_problems(recipe, launcher)
    if problems:
        slurm_only = launcher is None and problems[0].startswith("launcher.slurm.")
        hint = (" (a check for --launcher slurm; --launcher local does not read launcher.slurm)" if slurm_only
                else "")
        raise RecipeError(f"{where}: {problems[0]}{hint}")
