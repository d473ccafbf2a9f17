"""Same bytes on another CPU: run the tiny pipeline of every stage kind here and on an emulated
AVX2 CPU, then compare the two dvc.lock files output by output.

The emulated CPU is QEMU's user-mode emulator (`qemu-x86_64 -cpu EPYC-Rome` by default: an AMD
Zen 2, AVX2 and FMA, no AVX-512), so the libraries' own CPU detection picks their AVX2 kernels --
a real second instruction set, not the environment switches the test suite forces. Needs QEMU
>= 8 (Debian bookworm-backports' qemu-user): QEMU 7.2 computes oneDNN's LSTM kernels wrongly
(outputs off by up to 0.39). ``--cpu Haswell`` emulates an Intel CPU instead (portable mode runs
MKL's vendor-neutral branch, MKL_CBWR=COMPATIBLE, so Intel and AMD take the same MKL code; its
AVX2 branch would run only on Intel). The last gap it found (featurize's fold scalers differed
in their last bits between any emulated CPU and the real one: torch.sqrt runs through MKL's VML)
is closed by trendfactory.portable_math; see docs/team.md. DVC itself runs natively;
a `python` shim first on PATH runs each stage's `python -m trendfactory.stages...` under QEMU.
QEMU does not follow a process into the programs it starts, so the emulated run keeps every fit
in the stage's process (`parallel.cpus: 1`; the native run fans fits out to Ray workers).
Expect ~10x the native time under emulation (tens of minutes, one core).

    .venv/bin/python scripts/check_cross_cpu.py [--numerics portable|native] [--workdir DIR]

Exit 0 when every output hash agrees; otherwise it lists the stage outputs that differ. With
``--numerics native`` on an AVX-512 machine it shows what portable mode fixes.

``--project STAGE [STAGE ...]`` checks this repository's own pipeline instead: a clone of HEAD
(its outputs checked out from this project's DVC cache, ``parallel.cpus: 1``) reruns the named
stages one by one under the emulator (``dvc repro -f -s --no-commit``, nothing added to the
cache), and each stage's output hashes are compared with the committed ``dvc.lock``. The
default run's stages take ~10x their native time there, so name the ones to check, e.g.
``--project ingest featurize window train@xgboost-5 evaluate@xgboost-5``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pipeline_helpers import EVERY_KIND, copy_project  # noqa: E402
from trendfactory import numerics  # noqa: E402

QEMU_CPU = "EPYC-Rome"  # AMD Zen 2: AVX2 + FMA, no AVX-512


def _repro(work: Path, env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dvc repro failed in {work}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - started


def _outs(work: Path) -> dict[str, str]:
    import yaml

    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    return {f"{stage}: {o['path']}": o.get("md5") for stage, entry in lock.items() for o in entry.get("outs", [])}


def _shim(root: Path, qemu: str, cpu: str) -> Path:
    """A directory whose `python` runs this interpreter under ``qemu -cpu <cpu>``."""
    shim = root / "qemu-bin"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "python").write_text(f'#!/bin/sh\nexec {qemu} -cpu {cpu} {sys.executable} "$@"\n')
    (shim / "python").chmod(0o755)
    return shim


def check_project(stages: list[str], root: Path, qemu: str, cpu: str, base: dict) -> int:
    """Rerun ``stages`` of this repository's committed pipeline under emulation and compare
    their outputs' hashes with the committed dvc.lock; 0 when every one agrees."""
    import re

    work = root / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    env = dict(base, DVC_NO_ANALYTICS="1", PYTHONPATH=str(work / "src"))
    env["PATH"] = f"{_shim(root, qemu, cpu)}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "cache", "dir", "--local", str(ROOT / ".dvc" / "cache")], cwd=work, env=env, check=True)
    subprocess.run([*dvc, "checkout", "-q"], cwd=work, env=env, check=True)
    params = work / "params.yaml"  # QEMU does not follow into Ray's workers: every fit in the stage's process
    params.write_text(re.sub(r"^(  cpus:)( *)(#.*)?$", r"\1 1\2\3", params.read_text(), count=1, flags=re.MULTILINE))
    committed = _outs(work)
    differ, started = [], time.perf_counter()
    for stage in stages:
        t = time.perf_counter()
        proc = subprocess.run([*dvc, "repro", "-f", "-s", "--no-commit", stage], cwd=work, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"dvc repro {stage} failed under {cpu}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        now = _outs(work)
        mine = {k: v for k, v in now.items() if k.split(": ", 1)[0] == stage}
        bad = sorted(k for k in mine if mine[k] != committed.get(k))
        differ += bad
        print(f"[cross-cpu] {stage}: {len(mine) - len(bad)} of {len(mine)} outputs as committed ({time.perf_counter() - t:.0f}s under {cpu})", flush=True)
    print(f"[cross-cpu] {len(stages)} stages in {time.perf_counter() - started:.0f}s")
    return _report(differ, "from the committed dvc.lock", f"every output of {len(stages)} stages identical to the committed dvc.lock on an emulated {cpu}")


def _report(differ: list[str], against: str, same: str) -> int:
    """Print the outputs that differ (exit code 1) or the one line that says none does (0)."""
    if differ:
        print(f"[cross-cpu] {len(differ)} outputs differ {against}:\n  " + "\n  ".join(differ))
        return 1
    print(f"[cross-cpu] {same}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numerics", choices=numerics.MODES, default="portable")
    parser.add_argument("--workdir", type=Path, default=None, help="where the two projects go (default: a temp dir)")
    parser.add_argument("--cpu", default=QEMU_CPU, help="QEMU CPU model to emulate (default: %(default)s; `qemu-x86_64 -cpu help` lists them)")
    parser.add_argument("--project", nargs="+", metavar="STAGE", help="rerun these stages of this repository's committed pipeline under emulation and compare with its dvc.lock")
    args = parser.parse_args()
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise SystemExit("qemu-x86_64 not found; install QEMU >= 8 user mode (Debian: qemu-user from bookworm-backports)")
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.split()
    major = int(version[2].split(".")[0]) if len(version) > 2 and version[2][:1].isdigit() else 0
    if major < 8:
        raise SystemExit(f"{qemu}: QEMU {' '.join(version[2:3]) or '?'} found; QEMU >= 8 is needed (7.x computes oneDNN's LSTM wrongly)")
    cpu = args.cpu
    root = args.workdir or Path(tempfile.mkdtemp(prefix="cross-cpu-"))
    # the switches this process set on import are not what a fresh machine starts with
    base = {k: v for k, v in os.environ.items() if k not in {numerics.ENV_VAR, *numerics.portable_env(x86=True)}}
    if args.project:
        return check_project(args.project, root, qemu, cpu, base)
    profile = {**EVERY_KIND, "numerics": args.numerics}

    native = root / "native"
    env = copy_project(native, {**profile, "parallel": {"cpus": 2}}, base)
    print(f"[cross-cpu] native run ({args.numerics}) in {native} ...", flush=True)
    t_native = _repro(native, env)

    emulated = root / cpu.lower()
    env = copy_project(emulated, {**profile, "parallel": {"cpus": 1}}, base)
    shim = _shim(root, qemu, cpu)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    print(f"[cross-cpu] emulated {cpu} run ({args.numerics}) in {emulated} ...", flush=True)
    t_emulated = _repro(emulated, env)

    a, b = _outs(native), _outs(emulated)
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    print(f"[cross-cpu] native {t_native:.0f}s, emulated {cpu} {t_emulated:.0f}s; {len(a)} outputs compared")
    return _report(differ, f"between this CPU and the emulated {cpu}", f"every output identical on this CPU and on an emulated {cpu} (numerics: {args.numerics})")


if __name__ == "__main__":
    raise SystemExit(main())
