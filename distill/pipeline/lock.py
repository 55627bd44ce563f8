"""File locks between ``distill`` processes: one run per run folder, one builder per shared step.

Two ``distill run`` on one run folder would write the same steps at once, so the second is refused
with the holder's pid. Steps in the shared cache (tokenizers, built teachers) are wanted by every
run of a world: the first to get a step's lock builds it, the others wait on the lock and then find
it done. ``flock`` locks die with their process, so a killed run never leaves a stale lock behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

RUN_LOCK = ".lock"


class BusyError(RuntimeError):
    """Another process holds the lock; the message says which and what to do."""


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for this process, or raise ``BusyError`` at once if another process does."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise BusyError(f"{run_dir} is in use by another `distill run` (pid {holder}); wait for it "
                            f"to finish, or give this run another name (name=...)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def step_lock(folder: Path) -> Iterator[None]:
    """Wait for, then hold, the lock of one step folder (beside it: the folder itself is replaced
    whole when a step publishes, which must not drop the lock)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder.with_name(folder.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
