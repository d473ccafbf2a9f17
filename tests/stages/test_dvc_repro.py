"""End to end: `dvc repro window` on a tiny synthetic profile, in a temp copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from trendfactory.windows.reader import WindowSplit

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "data": {
        "source": "synthetic",
        "start": None,
        "end": None,
        "synthetic": {"n_symbols": 4, "n_bars": 700, "start": "2000-01-03", "signal_strength": 0.3},
    },
    "split": {"train_end": "2001-06-30", "val_end": "2002-01-31", "embargo": 5},
    "window": {"seq_len": 8},
}


def _run(args, cwd, env):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    work = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        if isinstance(values, dict):
            for k, v in values.items():
                if isinstance(v, dict):
                    params[section][k].update(v)
                else:
                    params[section][k] = v
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ)
    # Stages run `python -m trendfactory...`: make that the interpreter running the tests.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    dvc = [sys.executable, "-m", "dvc"]
    _run(dvc + ["init", "--no-scm", "-q"], work, env)
    _run(dvc + ["config", "core.analytics", "false"], work, env)
    first = _run(dvc + ["repro", "window"], work, env)
    second = _run(dvc + ["repro", "window"], work, env)
    return work, first, second


def test_repro_window_builds_everything(tiny_project):
    work, first, _ = tiny_project
    for rel in ("data/raw/bars.parquet", "data/raw/manifest.json", "data/features/train.parquet", "data/features/schema.json", "dvc.lock"):
        assert (work / rel).exists(), rel
    for split in ("train", "val", "test"):
        ws = WindowSplit.open(work / "data/windows" / split)
        assert len(ws.index(5)) > 0 and len(ws.index(20)) > 0
        x = ws.windows(ws.index(5)[:3])
        assert x.shape == (3, 8, ws.n_features) and np.isfinite(x).all()
    assert "Running stage 'window'" in first


def test_second_repro_is_up_to_date(tiny_project):
    _, _, second = tiny_project
    assert "up to date" in second.lower() or "didn't change" in second
    assert "Running stage" not in second
