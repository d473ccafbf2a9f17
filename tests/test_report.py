"""PR report: real `dvc metrics/params diff` in a small temp git + dvc repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trendfactory.report import MARKER, main, pr_report

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _sh(repo: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=repo, env=ENV, check=True, capture_output=True, text=True)


def _write(repo: Path, compare: dict, max_depth: int) -> None:
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics" / "compare.json").write_text(json.dumps(compare))
    (repo / "params.yaml").write_text(f"seed: 42\nmodels:\n  xgboost:\n    max_depth: {max_depth}\n")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Branch `main` with one metrics file and params; branch `pr` changes one metric and one param."""
    repo = tmp_path_factory.mktemp("prrepo")
    dvc = (sys.executable, "-m", "dvc")
    _sh(repo, "git", "init", "-q", "-b", "main")
    _sh(repo, "git", "config", "user.name", "test")
    _sh(repo, "git", "config", "user.email", "test@example.com")
    _sh(repo, "git", "config", "commit.gpgsign", "false")
    _sh(repo, *dvc, "init", "-q")
    _sh(repo, *dvc, "config", "core.analytics", "false")
    (repo / "dvc.yaml").write_text(
        "metrics:\n  - metrics/compare.json\n"
        "stages:\n  train:\n    cmd: echo train\n    params:\n      - seed\n      - models.xgboost\n"
    )
    _write(repo, {"accuracy": 0.5, "sharpe": {"h5": 1.25}}, max_depth=4)
    _sh(repo, "git", "add", ".")
    _sh(repo, "git", "commit", "-q", "-m", "base")
    _sh(repo, "git", "checkout", "-q", "-b", "pr")
    _write(repo, {"accuracy": 0.625, "sharpe": {"h5": 1.25}}, max_depth=6)
    _sh(repo, "git", "commit", "-q", "-am", "change")
    return repo


def _rows(text: str, key: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if f"| {key} " in line]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_changed_metric_and_param(repo):
    text = pr_report(base="main", repo=repo)
    assert text.startswith(MARKER)
    assert "trendfactory: metrics and params vs main" in text
    assert _rows(text, "accuracy") == [["metrics/compare.json", "accuracy", "0.5", "0.625", "0.125"]]
    assert _rows(text, "models.xgboost.max_depth") == [["params.yaml", "models.xgboost.max_depth", "4", "6"]]
    assert "sharpe.h5" not in text  # unchanged rows only with show_all
    assert "failed" not in text and "No metrics changes." not in text and "> dvc:" not in text


def test_show_all_lists_unchanged_metrics(repo):
    text = pr_report(base="main", repo=repo, show_all=True)
    assert _rows(text, "sharpe.h5") == [["metrics/compare.json", "sharpe.h5", "1.25", "1.25", "0.0"]]
    assert _rows(text, "seed") == []  # params stay changes-only


def test_no_changes(repo):
    text = pr_report(base="pr", repo=repo)
    assert MARKER in text
    assert "No metrics changes." in text and "No params changes." in text
    assert "|" not in text  # dvc's header-only tables are dropped


def test_bad_base_fails_clearly(repo, tmp_path, monkeypatch):
    text = pr_report(base="no-such-branch", repo=repo)
    assert "**`dvc metrics diff no-such-branch --md` failed:**" in text
    assert "**`dvc params diff no-such-branch --md` failed:**" in text
    assert "unknown Git revision 'no-such-branch'" in text

    monkeypatch.chdir(repo)
    out = tmp_path / "report.md"
    with pytest.raises(SystemExit) as exc:
        main(["--base", "no-such-branch", "--output", str(out)])
    assert exc.value.code == 1
    assert "unknown Git revision" in out.read_text()


def test_main_writes_report(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    out = tmp_path / "report.md"
    main(["--base", "main", "--output", str(out)])
    assert out.read_text() == pr_report(base="main", repo=repo)
    main(["--base", "main", "--all"])
    assert "sharpe.h5" in capsys.readouterr().out


def test_failure_uses_stderr_last_line():
    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 255, "", "noise\nERROR: something broke\n\n")

    text = pr_report(base="main", repo=Path("."), run=fake_run)
    assert text.count("failed:** ERROR: something broke") == 2
    assert "noise" not in text


def test_rows_sorted_and_warning_kept():
    table = "| Path | Metric |\n|---|---|\n| z.json | b |\n| a.json | a |\n"

    def fake_run(cmd, **kwargs):
        warning = "DVC failed to load some metrics for following revisions: 'workspace'.\n"
        return subprocess.CompletedProcess(cmd, 0, table, warning)

    text = pr_report(base="main", repo=Path("."), run=fake_run)
    assert text.index("| a.json | a |") < text.index("| z.json | b |")
    assert "> dvc: DVC failed to load some metrics" in text
