#!/usr/bin/env bash
# Update requirements.lock: resolve the newest versions pyproject.toml allows (torch pinned to its
# CPU build) in a throw-away venv, without installing anything, and record each package's exact
# version and sha256. Then: rm -rf .venv && bash scripts/setup.sh, `dvc repro`, and commit
# requirements.lock with the dvc.lock and metrics it produced (library versions move results).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
echo "[lock] resolving torch==2.13.0 (CPU build) and .[dev]"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
  --report "$tmp/report.json" "torch==2.13.0" -e ".[dev]" 2> >(grep -v "is ignored" >&2)
"$PYTHON" scripts/lock.py write "$tmp/report.json" > "$tmp/requirements.lock"
mv "$tmp/requirements.lock" requirements.lock
echo "[lock] wrote requirements.lock ($(grep -c '==' requirements.lock) packages)"
