"""Stage `check_params`: any bad params.yaml stops with one line before anything runs, and the
stage's output is the same fixed text for every valid file (so ingest does not rerun)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, params_text: str | None) -> subprocess.CompletedProcess:
    if params_text is not None:
        (tmp_path / "params.yaml").write_text(params_text)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "trendfactory.stages.check_params"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _repo_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(foo=1), "params.yaml: foo: unknown key"),  # a key no stage reads
        (lambda p: p["window"].update(seq_lenn=30), "params.yaml: window.seq_lenn: unknown key"),
        (lambda p: p["run"]["models"].append("foo"), "params.yaml: run.models[7]: got 'foo', expected one of"),
        (lambda p: p["models"]["lightgbm"].update(learning_rate=float("inf")), "params.yaml: models.lightgbm.learning_rate: got inf, expected a finite number"),
        (lambda p: p["run"]["models"].append("wavenet"), "params.yaml: run.models[7]: 'wavenet' is a network model; it belongs under run.neural_models"),
    ],
    ids=["unknown-top-level", "misspelt-unread", "unknown-model", "inf-in-model-section", "wrong-run-list"],
)
def test_bad_params_stop_with_one_line_and_no_output(tmp_path, edit, message):
    params = _repo_params()
    edit(params)
    result = _run(tmp_path, yaml.safe_dump(params))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith(f"error: {message}"), lines
    assert not [line for line in lines if line.startswith("error:")][1:], "one error line"
    assert not (tmp_path / "data" / "params_checked.txt").exists()


def test_missing_params_file_is_named(tmp_path):
    result = _run(tmp_path, None)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: params.yaml: params file not found; run from the project root or pass --params"


def test_valid_params_write_the_same_text_whatever_they_hold(tmp_path):
    params = _repo_params()
    assert _run(tmp_path, yaml.safe_dump(params)).returncode == 0
    first = (tmp_path / "data" / "params_checked.txt").read_bytes()
    params["train"]["lr"] = 0.0005
    assert _run(tmp_path, yaml.safe_dump(params)).returncode == 0
    assert (tmp_path / "data" / "params_checked.txt").read_bytes() == first  # ingest sees no change


def test_every_stage_runs_after_the_check():
    # ingest (the root of everything else) depends on the check's output, and the check depends
    # on every key of params.yaml; only code_deps (which reads no params) runs before it
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["check_params"]["params"] == [{"params.yaml": None}]
    assert "data/params_checked.txt" in stages["ingest"]["deps"]
    roots = [name for name, s in stages.items() if not any(str(d).startswith(("data/", "models/", "metrics/")) for d in s.get("deps", []))]
    assert roots == ["code_deps"] and "params" not in stages["code_deps"]
    after_code = [n for n, s in stages.items() if s.get("deps") == [f"data/code_deps/{n}.txt"]]
    assert after_code == ["check_params"]
