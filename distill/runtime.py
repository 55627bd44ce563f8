"""This process's threads, devices and rank: the one place that decides them; everything else asks.

- **threads**: one policy for a step, a local worker and a launched training rank
  (``thread_count``): a number asked for, else ``OMP_NUM_THREADS``, else Slurm's CPUs per task,
  else this machine's cores; shared by the processes that run beside each other (local workers, the
  ranks of one node). ``use_threads`` applies it to torch and to what the process launches.
- **devices**: the GPUs this process may use (``visible_gpus``), the device a model loads on
  (``device_for``: ``cuda:<shard mod GPUs>`` or ``cpu``), and the devices a step used, for the cost
  ledger (``used_devices``): what the runner said it spread over (training processes, a teacher
  sharded over GPUs), else the GPUs this process put memory on; never every visible GPU.
- **rank**: ``rank`` (0 outside a launched job) and ``is_launched``.

How many training processes a step runs, on which nodes, is its allocation (``distill.allocation``).
Importing this module does not import torch (validation and planning import it).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

_LAUNCH_ENV = ("LOCAL_RANK", "RANK")


def _int(env: Mapping[str, str], key: str) -> int:
    value = env.get(key, "")
    return int(value) if value.isdigit() else 0


def thread_count(env: Mapping[str, str] | None = None, requested: int | None = None, sharing: int = 1) -> int:
    """Intra-op threads for a process that shares its cores (or its Slurm CPUs) with ``sharing``
    others. An explicit number or ``OMP_NUM_THREADS`` (what a parent step set) is taken as it is."""
    env = os.environ if env is None else env
    if requested:
        return requested
    if fixed := _int(env, "OMP_NUM_THREADS"):
        return fixed
    total = _int(env, "SLURM_CPUS_PER_TASK") or os.cpu_count() or 1
    return max(1, total // max(1, sharing))


def use_threads(threads: int) -> int:
    """Set torch's intra-op threads and ``OMP_NUM_THREADS`` (read by what this process launches)."""
    import torch

    torch.set_num_threads(max(1, threads))
    os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return torch.get_num_threads()


def is_launched(env: Mapping[str, str] | None = None) -> bool:
    """True inside a process started by ``accelerate launch``, ``torchrun`` or Slurm's launcher."""
    env = os.environ if env is None else env
    return any(k in env for k in _LAUNCH_ENV)


def rank(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    return int(env.get("RANK", env.get("SLURM_PROCID", "0")) or 0)


def visible_gpus(env: Mapping[str, str] | None = None) -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else what torch sees."""
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([d for d in listed.split(",") if d.strip() and d.strip() != "-1"])
    import torch  # only at run time: validation never gets here

    return torch.cuda.device_count()


def device_for(shard: int = 0) -> str:
    """``cuda:<shard mod GPUs>`` when GPUs are visible (data-parallel shards), else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return f"cuda:{shard % torch.cuda.device_count()}"
    return "cpu"


def used_devices(claimed: int | None = None) -> dict:
    """The devices a step used: ``claimed`` (what its runner spread over), else the GPUs this process
    put memory on (at least one when it used CUDA at all); on a CPU-only machine, one CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"type": "cpu", "count": 1}
    touched = [i for i in range(torch.cuda.device_count()) if torch.cuda.max_memory_reserved(i) > 0]
    count = claimed or len(touched) or 1
    return {"type": "cuda", "count": count, "name": torch.cuda.get_device_name(touched[0] if touched else 0)}
