#!/usr/bin/env bash
# Build .venv-labelstudio: a separate environment with the Label Studio server and its SDK, for the
# real-server round trip (tests/integration/test_labelstudio_server.py).
#
#   bash .ci/labelstudio-env.sh     # idempotent: exits at once when the env already imports both
#   DISTILL_LABELSTUDIO_VENV=$PWD/.venv-labelstudio .venv/bin/python -m pytest tests/integration/test_labelstudio_server.py
#
# Why a second venv: label-studio pins its own Django stack, pydantic, requests, urllib3, boto etc.
# (about 1 GB), none of which distill needs; distill's side of the test talks to it over HTTP through a
# driver script that runs inside this env (tests/integration/labelstudio_driver.py).
# It also migrates an empty SQLite database once ($VENV/migrated-data): a fresh data folder spends
# ~2 minutes of a loaded 2-core machine on Django migrations, a copy of this one starts in ~25 s.
# Environment: DISTILL_LABELSTUDIO_VENV (default .venv-labelstudio), DISTILL_LABELSTUDIO (default 1.23.2),
# DISTILL_LABELSTUDIO_SDK (default 2.1.2).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DISTILL_LABELSTUDIO_VENV:-.venv-labelstudio}
VERSION=${DISTILL_LABELSTUDIO:-1.23.2}
SDK=${DISTILL_LABELSTUDIO_SDK:-2.1.2}
PY=$VENV/bin/python

TEMPLATE=$VENV/migrated-data
READY='import importlib.metadata as m, label_studio, label_studio_sdk; print(m.version("label-studio"), m.version("label-studio-sdk"))'
if [[ -x $PY ]] && "$PY" -c "$READY" >/dev/null 2>&1 && [[ -f $TEMPLATE/label_studio.sqlite3 ]]; then
    echo "labelstudio-env: $VENV ready (label-studio, sdk: $("$PY" -c "$READY"))"
    exit 0
fi
t0=$SECONDS
[[ -x $PY ]] || python3 -m venv "$VENV"
# sentry-sdk 3 removed options label-studio 1.23 passes at start-up ("Unknown option 'send_default_pii'")
"$PY" -m pip install --disable-pip-version-check -q "label-studio==$VERSION" "label-studio-sdk==$SDK" "sentry-sdk<3"
"$PY" -c "$READY" >/dev/null
# `label-studio version` applies the migrations, prints the versions and exits (no server, no user)
rm -rf "$TEMPLATE.tmp"
LABEL_STUDIO_BASE_DATA_DIR=$(realpath -m "$TEMPLATE.tmp") LATEST_VERSION_CHECK=false "$VENV/bin/label-studio" version >/dev/null
rm -rf "$TEMPLATE" && mv "$TEMPLATE.tmp" "$TEMPLATE"
echo "labelstudio-env: built $VENV in $((SECONDS - t0))s ($(du -sh "$VENV" | cut -f1); label-studio, sdk: $("$PY" -c "$READY"))"
