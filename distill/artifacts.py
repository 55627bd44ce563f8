"""Self-describing outputs: atomic writes, content hashes, done-markers and ``meta.json``.

Every artifact folder holds ``meta.json`` (resolved config slice, input hashes, library versions,
seeds, wall time, token counts) and, once complete, a ``DONE`` marker. Anything written goes to a
temp name first and is renamed into place, so a crash never leaves half a file behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

DONE = "DONE"
_LIBS = ("distill", "torch", "transformers", "accelerate", "datasets", "lm_eval", "deepspeed", "trl",
         "wandb", "tokenizers", "vllm")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from colleagues on a shared cluster
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield a temp folder beside ``path``; on success it replaces ``path`` whole, on error it vanishes.

    Staging left by a killed process (``.<name>.*`` beside it) is cleared first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 of canonical JSON: the same config gives the same id in every process and machine."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(folder: str | Path, pattern: str = "*") -> str:
    """Hash of the files under a folder (names and contents), e.g. a model's weights."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob(pattern) if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(file_hash(path).encode())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBS:
        try:
            versions[name] = metadata.version(name.replace("_", "-") if name == "lm_eval" else name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_meta(folder: str | Path, **fields: Any) -> Path:
    meta = {"versions": library_versions(), "git_revision": git_revision(), **fields}
    return atomic_write_json(Path(folder) / "meta.json", meta)


def read_meta(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "meta.json").read_text())


def mark_done(folder: str | Path) -> None:
    atomic_write_text(Path(folder) / DONE, "")


def is_done(folder: str | Path) -> bool:
    return (Path(folder) / DONE).exists()
