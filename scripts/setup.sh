#!/usr/bin/env bash
# Set up everything trendfactory needs from the project's own files: a virtualenv in .venv
# with the CPU build of PyTorch and the package (plus test tools) installed editable.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build, 2.13.0 to the CPU one.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU build)"
  "${PIP[@]}" "torch==2.13.0" 2> >(grep -v "is ignored" >&2)
fi
echo "[setup] installing trendfactory and its dependencies"
"${PIP[@]}" -e ".[dev]" 2> >(grep -v "is ignored" >&2)
.venv/bin/python -c "import trendfactory, torch, dvc, talib; print('[setup] ok: torch', torch.__version__)"
