"""Install distill into the current Python environment without dragging CUDA wheels onto a CPU box.

Run as a script, before distill itself is installed (standard library only):

    python distill/install.py            # CPU or GPU, detected
    python distill/install.py --cpu      # force the CPU path

A plain ``pip install torch`` on Linux resolves to the newest CUDA build (several GB). On a machine
without an NVIDIA GPU this script installs a CPU build of torch first (``DISTILL_CPU_TORCH``, default
2.13.0; from ``DISTILL_TORCH_INDEX`` when set, e.g. PyTorch's CPU wheel index) and then installs
distill under a constraint that keeps that torch. With a GPU, or when torch is already installed,
the existing torch is kept and pinned the same way, so GPU users keep their CUDA build.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_TORCH = "2.13.0"


def has_nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0


def installed_torch() -> str | None:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="install a CPU torch even if a GPU is present")
    parser.add_argument("--extras", default="dev",
                        help="optional extras to install (default: dev; e.g. dev,vllm)")
    args = parser.parse_args(argv)

    torch_version = installed_torch()
    if torch_version is None and (args.cpu or not has_nvidia_gpu()):
        index = os.environ.get("DISTILL_TORCH_INDEX")
        pip(f"torch=={os.environ.get('DISTILL_CPU_TORCH', CPU_TORCH)}",
            *(["--index-url", index] if index else []))
        torch_version = installed_torch()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        if torch_version:  # keep whichever torch is there (CPU here, CUDA on a GPU node)
            constraints.write(f"torch=={torch_version}\n")
    target = f"{ROOT}[{args.extras}]" if args.extras else str(ROOT)
    pip("-c", constraints.name, "-e", target)
    print(f"distill installed with torch {installed_torch()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
