"""A stage started by dvc stops when that dvc process is killed (with its worker processes),
instead of running on and later overwriting outputs DVC restored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

# the stage: watches its dvc ancestor, starts a worker process, then works "forever"
STAGE = """
import subprocess, sys, time
from trendfactory.stages.common import stop_with_dvc
assert stop_with_dvc(poll_seconds=0.1) is not None, "no dvc ancestor found"
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(f"{worker.pid}")
time.sleep(120)
"""

# a stand-in for `dvc repro`: an executable named dvc that runs the stage through a shell, as DVC does
FAKE_DVC = """#!{python}
import subprocess, sys
subprocess.run(["/bin/sh", "-c", sys.argv[1] + " ; true"])
"""


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_killing_dvc_stops_the_stage_and_its_workers(tmp_path):
    dvc = tmp_path / "dvc"
    dvc.write_text(FAKE_DVC.format(python=sys.executable))
    dvc.chmod(0o755)
    (tmp_path / "stage.py").write_text(STAGE)
    pid_file = tmp_path / "worker.pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    fake = subprocess.Popen([str(dvc), f"{sys.executable} {tmp_path / 'stage.py'} {pid_file}"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the stage did not start"
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        stage = next(p for p in psutil.Process(fake.pid).children(recursive=True) if "stage.py" in " ".join(p.cmdline()))
        os.kill(fake.pid, signal.SIGKILL)  # what a user's kill -9 (or a lost terminal) does to dvc
        fake.wait()
        assert _wait_gone(stage.pid, 10), "the stage kept running after dvc died"
        assert _wait_gone(worker, 10), "the stage's worker kept running"
    finally:
        for p in psutil.Process().children(recursive=True):
            p.kill()


def test_without_dvc_nothing_is_watched():
    from trendfactory.stages.common import stop_with_dvc

    assert stop_with_dvc() is None  # pytest is not started by dvc
