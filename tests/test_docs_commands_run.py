"""The shell commands of the README and docs/ run, as a reader runs them.

A small DVC project (this checkout's stages, params.yaml, README and docs on a tiny synthetic
universe: two walk-forward folds, both horizons, a baseline, the boosted trees, a recurrent
network and the dual tower) is reproduced, committed and pushed to a local remote, as a clone
of the project is. Then every command of every shell block is executed in reading order, each
block from the project's root (``cd`` moves within a block). What a reader supplies is supplied:
``bars/`` and ``bars.csv`` are the project's own bars written out as CSV, ``/path/to/bars`` is
that folder, ``<repo>`` is the project. Each ``dvc exp run`` is an experiment from the baseline,
so the workspace is put back after it (DVC leaves an experiment's results in the workspace); each
block also starts with the project's DVC config as set up (a block that points the remote at S3
presumes the reader installed dvc-s3, as the page says).

Only sizes shrink (the small profile's ``tune.trials``); what runs elsewhere says where
(``RUN_ELSEWHERE``: the setup commands, which ``.ci/run`` runs, and the full run list, too long
for the suite). tests/test_docs_commands.py checks the same commands against the code
without running them, in seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline_helpers import copy_project
from tests.test_docs_commands import COMMANDS, IDS

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "data": {"source": "synthetic", "start": None, "end": None, "synthetic": {"n_symbols": 5, "n_bars": 900, "start": "2000-01-03", "signal_strength": 0.5}},
    "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
    "split": {"scheme": "walk_forward", "test_start": "2002-01-01", "fold": 1, "val_years": 1, "train_end": "2001-06-30", "val_end": "2002-01-31", "embargo": 5},
    "window": {"seq_len": 8},
    "label": {"horizons": [5, 20]},
    "run": {"models": ["momentum", "xgboost", "lightgbm"], "neural_models": ["lstm"], "joint_models": ["dual_tower"]},
    "models": {"xgboost": {"n_estimators": 20}, "lightgbm": {"n_estimators": 20}, "lstm": {"hidden": 16}, "dual_tower": {"context_hidden": [16], "stock_hidden": [32]}},
    "train": {"max_epochs": 1, "batch_size": 256},
    "evaluate": {"bootstrap_reps": 100, "seeds": 1},
    "tune": {"trials": 2, "startup_trials": 1},
    # fits in the stage's own process: a local Ray per stage would add its start-up (~7 s) to every
    # train stage of these tiny fits; Ray itself is tested by test_parallel, test_numerics and test_tune
    "parallel": {"cpus": 1},
}
# the small profile's sizes where a command names a size
SIZES = {"tune.trials=100": "tune.trials=2"}
RUN_ELSEWHERE = {
    ("bash", "scripts/setup.sh"): ".ci/run runs it on a fresh machine before the tests",
    (".", ".venv/bin/activate"): "the runner calls the virtual environment's tools by path",
    (".venv/bin/python", "-m", "pytest", "-q"): ".ci/run runs it: this test is part of it",
}
# Commands too long for the suite, with where they did run (a test checks the page still has them).
FULL_RUN = next(c.argv for c in COMMANDS if c.argv[:4] == ["dvc", "exp", "run", "-n"] and c.argv[4] == "full")
RUN_ELSEWHERE[tuple(FULL_RUN)] = (
    "every registered model through the pipeline: 10 to 15 minutes even on the small profile; run on the default data as "
    "the experiment behind docs/results/full_run.json (test_experiment_results checks the page against it), and each "
    "model it adds is fitted, saved and scored by tests/models/ conformance tests"
)


def _tool(argv: list[str]) -> list[str]:
    if argv[0] == "dvc":
        return [sys.executable, "-m", "dvc", *argv[1:]]
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    if argv[0] == "trendfactory":
        return [str(Path(sys.executable).parent / "trendfactory"), *argv[1:]]
    return argv


def _write_bars(work: Path) -> None:
    """The reader's own bars: the project's ingested bars as one long CSV and a folder of one CSV per symbol."""
    bars = pd.read_parquet(work / "data/raw/bars.parquet")
    bars.to_csv(work / "bars.csv", index=False)
    (work / "bars").mkdir()
    for symbol, rows in bars.groupby("symbol"):
        rows.drop(columns="symbol").to_csv(work / "bars" / f"{symbol}.csv", index=False)


def _sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[int, tuple[int, str]]:
    """Every docs command, run in order: its index in COMMANDS -> (exit code, the end of its output)."""
    # Long on purpose: the reader's setup, then the commands in reading order with their state (cwd).
    base = tmp_path_factory.mktemp("docs_commands")
    work = base / "project"
    env = copy_project(work, SMALL)
    for name in ("README.md", "docs"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
    # what a clone has in .dvc/ beside DVC's own files: the plot templates and the CDN fallback page
    shutil.copytree(ROOT / ".dvc/plots", work / ".dvc/plots")
    shutil.copy(ROOT / ".dvc/plots_fallback.html", work / ".dvc/plots_fallback.html")
    dvc = [sys.executable, "-m", "dvc"]
    git = ["git", "-c", "commit.gpgsign=false"]
    for cmd in (
        [*dvc, "remote", "add", "-d", "storage", str(base / "storage")],
        [*dvc, "config", "plots.html_template", "plots_fallback.html"],
        [*dvc, "repro"],
        [*dvc, "push"],
        ["git", "add", "-A"],
        [*git, "commit", "-qm", "baseline"],
    ):
        t0 = time.perf_counter()
        proc = _sh(cmd, work, env)
        assert proc.returncode == 0, f"setup: {' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        print(f"{time.perf_counter() - t0:6.1f} s  setup: {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)[:100]}", flush=True)
    _write_bars(work)
    dvc_config = (work / ".dvc/config").read_text()
    readers = {"/path/to/bars": str(work / "bars"), "<repo>": str(work)}
    out: dict[int, tuple[int, str]] = {}
    cwd, block = work, None
    for i, c in enumerate(COMMANDS):
        if c.block != block:  # a new block starts in the project as set up, its local remote included
            cwd, block = work, c.block
            (work / ".dvc/config").write_text(dvc_config)
            (work / ".dvc/config.local").unlink(missing_ok=True)
        argv = [SIZES.get(a, a) for a in c.argv]
        argv = [next((a.replace(k, v) for k, v in readers.items() if k in a), a) for a in argv]
        if tuple(argv) in RUN_ELSEWHERE:
            continue
        if argv[0] == "cd":
            cwd = cwd / argv[1]
            out[i] = (0 if cwd.is_dir() else 1, f"cd {cwd}")
            continue
        if argv[:2] == ["git", "clone"]:
            cwd = base  # a clone goes beside the project; the block's `cd` then enters it
        t0 = time.perf_counter()
        proc = _sh(_tool(argv), cwd, env)
        out[i] = (proc.returncode, (proc.stdout + proc.stderr)[-3000:])
        print(f"{time.perf_counter() - t0:6.1f} s  rc {proc.returncode}  {c.where} {' '.join(argv)[:100]}", flush=True)
        if argv[:3] == ["dvc", "exp", "run"]:  # back to the baseline for the next reader, whatever happened
            for cmd in (["git", "checkout", "-q", "--", "."], [*dvc, "checkout", "--force", "-q"]):
                _sh(cmd, cwd, env)
    return out


def test_every_command_runs_or_says_where_it_runs():
    kept = {tuple(c.argv) for c in COMMANDS if tuple(c.argv) in RUN_ELSEWHERE}
    assert kept == set(RUN_ELSEWHERE), f"RUN_ELSEWHERE names commands no page has any more: {set(RUN_ELSEWHERE) - kept}"
    assert set(SIZES) <= {a for c in COMMANDS for a in c.argv}, "SIZES names an argument no page has any more"


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=IDS)
def test_a_docs_command_runs(i: int, ran):
    command = COMMANDS[i]
    if tuple(command.argv) in RUN_ELSEWHERE:
        pytest.skip(RUN_ELSEWHERE[tuple(command.argv)])
    code, tail = ran[i]
    assert code == 0, f"{command.where}: `{' '.join(command.argv)}` exited {code}:\n{tail}"
