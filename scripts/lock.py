"""The locked environment: write requirements.lock from a pip resolution report, or check that
an installed environment matches it exactly.

    python scripts/lock.py write REPORT.json > requirements.lock   (scripts/lock.sh does this)
    python scripts/lock.py check requirements.lock                 (scripts/setup.sh does this)

``check`` exits 1, naming every package that differs, when an installed version is not the
locked one, a locked package is missing, or a package is installed that the lock does not hold
(pip, setuptools and wheel, and the project itself, excepted).
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path

PROJECT = "trendfactory"
TOOLS = {"pip", "setuptools", "wheel"}  # the installer's own; setuptools is locked when a package needs it


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write(report_path: str) -> str:
    report = json.loads(Path(report_path).read_text())
    lines = [
        "# trendfactory's locked environment: the exact version and sha256 of every package, torch's CPU",
        "# build included. scripts/setup.sh installs it with `pip install --require-hashes` and fails when",
        "# the environment differs from it. Regenerate (newest versions pyproject.toml allows): bash scripts/lock.sh",
    ]
    for item in sorted(report["install"], key=lambda i: _norm(i["metadata"]["name"])):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if _norm(name) == PROJECT:
            continue
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            raise SystemExit(f"error: {name}=={version} has no sha256 in {report_path} (a VCS or directory install?); lock only index packages")
        lines.append(f"{_norm(name)}=={version} \\\n    --hash=sha256:{hashes['sha256']}")
    return "\n".join(lines) + "\n"


def locked(lock_path: str) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", Path(lock_path).read_text(), flags=re.M)
    return {_norm(n): v for n, v in pins}


def check(lock_path: str) -> int:
    want = locked(lock_path)
    have = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}
    problems = [f"{n}: locked {v}, installed {have.get(n, 'nothing')}" for n, v in sorted(want.items()) if have.get(n) != v]
    problems += [f"{n}: installed {v}, not in the lock" for n, v in sorted(have.items()) if n not in want and n not in TOOLS | {PROJECT}]
    if problems:
        print(f"error: the environment differs from {lock_path} in {len(problems)} package(s):", file=sys.stderr)
        for p in problems[:30]:
            print(f"  {p}", file=sys.stderr)
        print("fix: recreate it (rm -rf .venv && bash scripts/setup.sh), or update the lock (bash scripts/lock.sh) and commit it", file=sys.stderr)
        return 1
    print(f"[setup] the environment matches {lock_path} ({len(want)} packages)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        sys.stdout.write(write(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        raise SystemExit(check(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
