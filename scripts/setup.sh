#!/usr/bin/env bash
# Set up everything trendfactory needs from the project's own files: a virtualenv in .venv with
# the locked environment (requirements.lock: exact versions and sha256 of every package, torch's
# CPU build included) and the package itself installed editable. Fails, naming the packages,
# when the environment differs from the lock. Idempotent: a second run only checks.
# Update the lock with scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# requirements.lock pins CPython 3.11 wheels (cp311, Linux x86-64): any other interpreter fails
# deep inside pip, so say so first, naming the one found
if [ -x .venv/bin/python ]; then py=.venv/bin/python fix="rm -rf .venv && PYTHON=python3.11 bash scripts/setup.sh"; else py="$PYTHON" fix="PYTHON=python3.11 bash scripts/setup.sh"; fi
found=$("$py" -c 'import platform; print(platform.python_implementation(), platform.python_version())' 2>/dev/null) || found="not found"
if [[ "$found" != "CPython 3.11."* ]]; then
  echo "[setup] error: $py is ${found}, but requirements.lock pins CPython 3.11 wheels; install CPython 3.11 and run: $fix" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
echo "[setup] installing the locked environment (requirements.lock)"
"${PIP[@]}" --require-hashes -r requirements.lock 2> >(grep -v "is ignored" >&2)
echo "[setup] installing trendfactory (editable)"
"${PIP[@]}" --no-deps -e . 2> >(grep -v "is ignored" >&2)
.venv/bin/python scripts/lock.py check requirements.lock
# `dvc plots show` pages that work offline: vega, vega-lite and vega-embed from the npm registry,
# inlined into build/plots_template.html, which .dvc/config.local then names
if command -v npm >/dev/null; then
  bash scripts/vega.sh
else  # the pipeline and the tests do not need it; only `dvc plots show` does
  echo "[setup] warning: npm not found, so build/plots_template.html is not built and \`dvc plots show\` pages load vega from a CDN (blank offline);" \
       "install Node.js with npm (e.g. apt-get install npm) and rerun bash scripts/setup.sh" >&2
fi
.venv/bin/python -c "import trendfactory, torch, dvc, talib; print('[setup] ok: torch', torch.__version__)"
