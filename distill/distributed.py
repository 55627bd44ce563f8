"""Process groups, accelerate and DeepSpeed: the only module that touches them (this process's
threads, devices and rank are ``distill.runtime``'s).

``setup()`` builds one ``Runtime`` per process from an accelerate YAML (``recipes/accelerate/*.yaml``)
or from nothing (one process, plain PyTorch). The YAML is read here, not only by ``accelerate
launch``, so the same file drives ``accelerate launch``, ``torchrun`` and a single process alike.
Gradient accumulation, micro-batch size and clipping come from the training config, never the YAML.

Facts this relies on (measured on CPU with torch 2.13, accelerate 1.16 and DeepSpeed 0.19):
- On CPU, accelerate with DeepSpeed miscounts processes unless the Accelerator gets
  ``InitProcessGroupKwargs(backend="gloo")``; ``Accelerator(cpu=True)`` silently drops DeepSpeed.
- A client torch optimizer avoids DeepSpeed's JIT-built Adam. The first process group on CPU
  JIT-builds DeepSpeed's shared-memory comm op once (40-200 s) into ``TORCH_EXTENSIONS_DIR``
  (default ``~/.cache/torch_extensions``), which later runs reuse.
- ZeRO-3 saves safetensors only with ``stage3_gather_16bit_weights_on_model_save: true``, and its
  processes sometimes abort at exit unless engine and process group are torn down explicitly.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.allocation import read_config, resolve_config  # noqa: F401  (re-exported: launchers use them)
from distill.runtime import is_launched, thread_count, use_threads


def _deepspeed_plugin(config: dict[str, Any]):
    from accelerate.utils import DeepSpeedPlugin

    ds = dict(config.get("deepspeed_config") or {})
    ds.pop("deepspeed_multinode_launcher", None)  # a launcher setting, not the engine's
    if "deepspeed_config_file" in ds:
        return DeepSpeedPlugin(hf_ds_config=ds.pop("deepspeed_config_file"))
    return DeepSpeedPlugin(
        zero_stage=int(ds.get("zero_stage", 2)),
        offload_optimizer_device=ds.get("offload_optimizer_device", "none"),
        offload_param_device=ds.get("offload_param_device", "none"),
        zero3_init_flag=bool(ds.get("zero3_init_flag", False)),
        zero3_save_16bit_model=bool(ds.get("zero3_save_16bit_model", True)),
    )


@dataclass
class Runtime:
    """One process's view of the run: its rank, device and the accelerate machinery behind them."""

    accelerator: Any
    deepspeed: bool
    threads: int

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def backend(self) -> str:
        if self.deepspeed:
            return f"deepspeed-zero{self.accelerator.state.deepspeed_plugin.zero_stage}"
        return "ddp" if self.world_size > 1 else "single"

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        return f"{self.world_size} x {name}"

    def prepare(self, model, optimizer, accumulation: int, micro_batch_size: int, max_grad_norm: float):
        """Wrap model and optimizer (DDP or a DeepSpeed engine) for ``accumulation`` micro-steps."""
        self.accelerator.gradient_accumulation_steps = accumulation
        if self.deepspeed:
            ds = self.accelerator.state.deepspeed_plugin.deepspeed_config
            ds["gradient_accumulation_steps"] = accumulation
            ds["train_micro_batch_size_per_gpu"] = micro_batch_size
            ds["train_batch_size"] = micro_batch_size * accumulation * self.world_size
            ds["gradient_clipping"] = max_grad_norm
        return self.accelerator.prepare(model, optimizer)

    def accumulate(self, model):
        """Context of one micro-step; gradients sync and the optimizer steps on the last one."""
        return self.accelerator.accumulate(model)

    @property
    def sync_step(self) -> bool:
        return self.accelerator.sync_gradients

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def clip(self, model, max_norm: float) -> float | None:
        """Clip gradients at a sync step (DeepSpeed clips inside its engine; returns its norm)."""
        if self.deepspeed:
            norm = self.accelerator.deepspeed_engine_wrapped.get_global_grad_norm()
            return None if norm is None else float(norm)
        return float(self.accelerator.clip_grad_norm_(model.parameters(), max_norm))

    def sum(self, values: list[float]) -> list[float]:
        """Sum a few floats over ranks (every rank gets the result)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.accelerator.reduce(tensor, reduction="sum").tolist() if self.world_size > 1 else values

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    def save_state(self, folder: Path) -> None:
        self.accelerator.save_state(str(folder))

    def load_state(self, folder: Path) -> None:
        self.accelerator.load_state(str(folder))

    def save_model(self, model, tokenizer, path: Path) -> Path:
        """Final student as plain HF safetensors + tokenizer, written to a temp folder then renamed.

        Every rank must call this: under ZeRO-3 the full weights are gathered from all of them.
        """
        state_dict = self.accelerator.get_state_dict(model)
        if self.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            try:
                unwrapped = self.accelerator.unwrap_model(model)
                # gathered state dicts hold tied weights twice (as copies); keep the canonical name only
                canonical = {n for n, _ in unwrapped.named_parameters()}
                aliases = {n for n, _ in unwrapped.named_parameters(remove_duplicate=False)} - canonical
                state_dict = {k: v for k, v in state_dict.items() if k not in aliases}
                unwrapped.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
                tokenizer.save_pretrained(tmp)
                if path.exists():
                    shutil.rmtree(path)
                os.replace(tmp, path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        self.barrier()
        return path

    def close(self) -> None:
        """Tear down engine and process group explicitly (ZeRO-3 may abort at exit otherwise), and
        forget accelerate's process-wide state so a later run in this process starts afresh."""
        from accelerate.state import AcceleratorState
        engine = getattr(self.accelerator, "deepspeed_engine_wrapped", None)
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.engine.destroy()
        self.accelerator.free_memory()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            with contextlib.suppress(Exception):
                torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        AcceleratorState._reset_state(reset_partial_state=True)


def setup(config_path: str | None, bf16: bool = False) -> Runtime:
    """The process's Runtime. Without a config: one process, plain PyTorch on the best device."""
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    # this node's cores (or Slurm CPUs) shared by its ranks, unless the step set OMP_NUM_THREADS
    threads = use_threads(thread_count(sharing=int(os.environ.get("LOCAL_WORLD_SIZE") or 1)))
    if not is_launched():  # one process: forget state another library left here (e.g. a TRL Trainer)
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    config = read_config(config_path) if config_path else {}
    deepspeed = config.get("distributed_type") == "DEEPSPEED"
    handlers = []
    if is_launched() and not torch.cuda.is_available():  # CPU: gloo, so DeepSpeed ranks count right
        handlers.append(InitProcessGroupKwargs(backend="gloo", timeout=datetime.timedelta(minutes=30)))
    accelerator = Accelerator(
        # without a GPU, plain DDP needs cpu=True (else accelerate quietly runs each rank alone);
        # with DeepSpeed it must stay False (cpu=True quietly drops DeepSpeed)
        cpu=is_launched() and not deepspeed and not torch.cuda.is_available(),
        mixed_precision="bf16" if bf16 else "no",
        deepspeed_plugin=_deepspeed_plugin(config) if deepspeed else None,
        kwargs_handlers=handlers,
    )
    _check_world(accelerator)
    return Runtime(accelerator=accelerator, deepspeed=deepspeed, threads=threads)


def _check_world(accelerator) -> None:
    """Fail loudly when the launcher started N processes but accelerate did not join them up."""
    from accelerate import DistributedType

    expected = int(os.environ.get("WORLD_SIZE", "1"))
    joined = accelerator.distributed_type != DistributedType.NO and torch.distributed.is_initialized()
    if expected > 1 and not (joined and torch.distributed.get_world_size() == expected):
        raise RuntimeError(f"launched as {expected} processes but accelerate set up "
                           f"{accelerator.distributed_type} with {accelerator.num_processes}; "
                           f"check the accelerate config and the launcher")
