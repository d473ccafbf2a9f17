#!/usr/bin/env bash
# Update requirements.lock: resolve the newest versions pyproject.toml allows (torch pinned to its
# CPU build) in a throw-away venv, without installing anything, and record each package's exact
# version and sha256. Then: rm -rf .venv && bash scripts/setup.sh, `dvc repro`, and commit
# requirements.lock with the dvc.lock and metrics it produced (library versions move results).
#
#   bash scripts/lock.sh          every package at the newest version allowed
#   bash scripts/lock.sh --keep   keep every locked version; resolve only what is new (after adding
#                                 a dependency to pyproject.toml: results do not move)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
echo "[lock] resolving torch==2.13.0 (CPU build) and .[dev]"
constraints=()
if [[ "${1:-}" == "--keep" ]]; then
  grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | sed 's/ .*//' > "$tmp/constraints.txt"
  constraints=(-c "$tmp/constraints.txt")
  echo "[lock] keeping the $(wc -l < "$tmp/constraints.txt") locked versions"
fi
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
  --report "$tmp/report.json" "${constraints[@]}" "torch==2.13.0" -e ".[dev]" 2> >(grep -v "is ignored" >&2)
"$PYTHON" scripts/lock.py write "$tmp/report.json" > "$tmp/requirements.lock"
mv "$tmp/requirements.lock" requirements.lock
echo "[lock] wrote requirements.lock ($(grep -c '==' requirements.lock) packages)"
