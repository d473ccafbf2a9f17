"""Wall time of the whole DVC pipeline: a full `dvc repro` from scratch, per stage and per
model family, and a no-op `dvc repro` of the up-to-date pipeline.

Targets: the full default `dvc repro` on the embedded data -- walk-forward with at least 12
out-of-sample years, every model of the default run lists at both horizons -- <= 30 min on the
2-core machine (issue 9); a no-op `dvc repro` <= 3 s.

    .venv/bin/python benchmarks/bench_pipeline.py            # full run in a temp copy, then no-ops
    .venv/bin/python benchmarks/bench_pipeline.py --noop     # only time no-ops here (pipeline up to date)

The full run copies the project (code, params, dvc.yaml; no data) to a temp git repo and runs
every stage (`--no-run-cache`), so nothing is reused; stage times come from when DVC announces
each stage. With --share-cache the results land in this checkout's DVC cache too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"Running stage '([^']+)'")


def _env() -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def timed_repro(cwd: Path) -> tuple[float, dict[str, float]]:
    """Run every stage (`dvc repro --no-run-cache`: no result is taken from a cache); (total
    seconds, stage -> seconds from its start to the next one's)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--no-run-cache"], cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks: list[tuple[str, float]] = []
    for line in proc.stdout:
        m = STAGE.search(line)
        if m:
            marks.append((m.group(1), time.perf_counter()))
            print(f"  {time.perf_counter() - t0:7.1f}s  {m.group(1)}", flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"dvc repro failed in {cwd}")
    end = time.perf_counter()
    stages = {}
    for i, (name, t) in enumerate(marks):
        stages[name] = (marks[i + 1][1] if i + 1 < len(marks) else end) - t
    return end - t0, stages


def noop_times(cwd: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=cwd, env=_env(), capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0 or "Running stage" in out.stdout:
            raise SystemExit(f"not a no-op:\n{out.stdout}\n{out.stderr}")
    return times


def family_of(stage: str) -> str:
    if "@" not in stage:
        return stage
    from trendfactory.models import get_model_class

    model = stage.split("@", 1)[1].rsplit("-", 1)[0]
    return f"{get_model_class(model).family} ({stage.split('@')[0]})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--noop", action="store_true", help="only time no-op repros of this checkout")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--share-cache", action="store_true", help="write into this checkout's DVC cache, so a later `dvc repro` here restores the results from DVC's run cache")
    args = ap.parse_args()
    if args.noop:
        t = noop_times(ROOT, args.repeats)
        print(f"no-op dvc repro: median {statistics.median(t):.2f} s over {len(t)} (all: {', '.join(f'{x:.2f}' for x in t)}); target <= 3 s")
        return
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:
        work = Path(tmp)
        for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
            shutil.copy(ROOT / name, work / name)
        shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
        env = _env()
        cmds = [["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "commit.gpgsign=false", "commit", "-qm", "bench"]]
        if args.share_cache:
            cmds.insert(2, [sys.executable, "-m", "dvc", "cache", "dir", str(ROOT / ".dvc" / "cache")])
        for cmd in cmds:
            subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
        print("full dvc repro (fresh copy, every stage run):")
        total, stages = timed_repro(work)
        fam = defaultdict(float)
        for s, t in stages.items():
            fam[family_of(s)] += t
        tabular = sum(t for st, t in stages.items() if "_neural@" not in st and "_joint@" not in st)
        print(f"\nfull dvc repro: {total:.0f} s = {total / 60:.1f} min (target with every model <= 25 min)")
        print(f"  without the neural and dual-tower stages: {tabular:.0f} s = {tabular / 60:.1f} min (target for the issue-3 models <= 10 min)")
        print("by family:")
        for k, v in sorted(fam.items(), key=lambda kv: -kv[1]):
            print(f"  {k:28s} {v:7.1f} s")
        t = noop_times(work, args.repeats)
        print(f"no-op dvc repro: median {statistics.median(t):.2f} s over {len(t)} (all: {', '.join(f'{x:.2f}' for x in t)}); target <= 3 s")


if __name__ == "__main__":
    main()
