"""Wall time of the whole DVC pipeline: a full `dvc repro` from scratch, per stage and per
model family, and a no-op `dvc repro` of the up-to-date pipeline.

Targets: the full default `dvc repro` on the embedded data -- walk-forward with at least 12
out-of-sample years, every model of the default run lists at both horizons -- <= 30 min on the
2-core machine (issue 9); a no-op `dvc repro` <= 3 s.

    .venv/bin/python benchmarks/bench_pipeline.py            # full run in a temp copy, then no-ops
    .venv/bin/python benchmarks/bench_pipeline.py --noop     # only time no-ops here (pipeline up to date)

The full run copies the project (code, params, dvc.yaml; no data) to a temp git repo and runs
every stage (`--no-run-cache`), so nothing is reused; stage times come from when DVC announces
each stage. With --share-cache the results land in this checkout's DVC cache too. With
--workdir DIR the run happens in that existing checkout instead (e.g. a clone sharing this
cache), every stage forced, and its dvc.lock and metrics stay there to commit.
The stages import the copy's own `src/` (PYTHONPATH), so editing this checkout during a run
does not change what is measured.
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


def _env(src: Path | None = None) -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if src is not None:  # the measured copy's code, not the editable install's
        env["PYTHONPATH"] = str(src)
    return env


def timed_repro(cwd: Path) -> tuple[float, dict[str, float]]:
    """Run every stage (`dvc repro --force --no-run-cache`: no result is taken from a cache); (total
    seconds, stage -> seconds from its start to the next one's)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "--no-run-cache"], cwd=cwd, env=_env(cwd / "src"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        out = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=cwd, env=_env(cwd / "src"), capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0 or "Running stage" in out.stdout:
            raise SystemExit(f"not a no-op:\n{out.stdout}\n{out.stderr}")
    return times


def family_of(stage: str) -> str:
    if "@" not in stage or stage.startswith("ensemble@"):
        return stage.split("@")[0]
    from trendfactory.models import get_model_class

    model = stage.split("@", 1)[1].rsplit("-", 1)[0]
    return f"{get_model_class(model).family} ({stage.split('@')[0]})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--noop", action="store_true", help="only time no-op repros of this checkout")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--share-cache", action="store_true", help="write into this checkout's DVC cache, so a later `dvc repro` here restores the results from DVC's run cache")
    ap.add_argument("--workdir", type=Path, help="run in this existing checkout (every stage forced) instead of a temp copy")
    args = ap.parse_args()
    if args.workdir:
        report(args.workdir.resolve(), args.repeats)
        return
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
        report(work, args.repeats)


def report(work: Path, repeats: int) -> None:
    """Time a full forced repro in ``work``, by stage family, then no-op repros."""
    print(f"full dvc repro in {work} (every stage run):")
    total, stages = timed_repro(work)
    fam = defaultdict(float)
    for s, t in stages.items():
        fam[family_of(s)] += t
    networks = sum(t for st, t in stages.items() if "_neural@" in st or "_joint@" in st)
    print(f"\nfull dvc repro: {total:.0f} s = {total / 60:.1f} min (target <= 30 min)")
    print(f"  network and dual-tower stages (train + evaluate): {networks:.0f} s; everything else {total - networks:.0f} s")
    print("by family:")
    for k, v in sorted(fam.items(), key=lambda kv: -kv[1]):
        print(f"  {k:28s} {v:7.1f} s")
    print("slowest stages:")
    for k, v in sorted(stages.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {k:28s} {v:7.1f} s")
    t = noop_times(work, repeats)
    print(f"no-op dvc repro: median {statistics.median(t):.2f} s over {len(t)} (all: {', '.join(f'{x:.2f}' for x in t)}); target <= 3 s")


if __name__ == "__main__":
    main()
