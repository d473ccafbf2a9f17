"""PR checks: the report (real `dvc metrics/params diff` in a small temp git + dvc repo, and a
diff the size of a full rerun through a fake runner) and the stale-lock check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trendfactory.report import COMMENT_LIMIT, MARKER, build_report, check_lock, detail_rows, main, stale_stages

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}
DVC = (sys.executable, "-m", "dvc")


def _sh(repo: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=repo, env=ENV, check=True, capture_output=True, text=True)


def _write(repo: Path, xgb_ric: float, xgb_t: float, xgb_p: float, selected: str, max_depth: int) -> None:
    """The layout of a run: one headline file per item, one summary per horizon."""
    (repo / "metrics" / "eval").mkdir(parents=True, exist_ok=True)
    for m, ric, t, p in (("xgboost", xgb_ric, xgb_t, xgb_p), ("lstm", 0.01, 0.5, 0.62)):
        (repo / "metrics" / "eval" / f"{m}-h5.json").write_text(json.dumps({"rank_ic": ric, "rank_ic_t": t, "rank_ic_p": p, "val_rank_ic": 0.02, "sharpe": 0.5, "log_loss": 1.09}))
    (repo / "metrics" / "summary").mkdir(exist_ok=True)
    (repo / "metrics" / "summary" / "h5.json").write_text(json.dumps({"selected": selected, "rank_ic": xgb_ric, "rank_ic_t": 1.0, "survives": False}))
    (repo / "params.yaml").write_text(f"seed: 42\nmodels:\n  xgboost:\n    max_depth: {max_depth}\n")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Branch `main`; branch `pr` moves xgboost's test Rank IC (and its significance) and one param."""
    repo = tmp_path_factory.mktemp("prrepo")
    _sh(repo, "git", "init", "-q", "-b", "main")
    _sh(repo, "git", "config", "user.name", "test")
    _sh(repo, "git", "config", "user.email", "test@example.com")
    _sh(repo, "git", "config", "commit.gpgsign", "false")
    _sh(repo, *DVC, "init", "-q")
    _sh(repo, *DVC, "config", "core.analytics", "false")
    (repo / "src.py").write_text("print('train')\n")
    (repo / "dvc.yaml").write_text(
        "metrics:\n  - metrics/eval\n  - metrics/summary\n"
        "stages:\n  train:\n    cmd: python -c \"open('out.txt', 'w').write('x')\"\n    deps:\n      - src.py\n"
        "    params:\n      - models.xgboost\n    outs:\n      - out.txt\n"
    )
    _write(repo, 0.010, 1.2, 0.24, "lstm", max_depth=4)
    _sh(repo, *DVC, "repro", "-q")
    (repo / ".gitignore").write_text("out.txt\n")
    _sh(repo, "git", "add", ".")
    _sh(repo, "git", "commit", "-q", "-m", "base")
    _sh(repo, "git", "checkout", "-q", "-b", "pr")
    _write(repo, 0.030, 2.1, 0.04, "xgboost", max_depth=6)
    _sh(repo, "git", "commit", "-q", "-am", "change")
    return repo


def _rows(text: str, key: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith(f"| {key} ")]


def test_headline_table_verdict_and_params(repo):
    text, ok = build_report(base="main", repo=repo)
    assert ok and text.startswith(MARKER)
    assert _rows(text, "h5") == [["h5", "lstm → xgboost", "+0.0100 → +0.0300", "+1.00", "False"]]
    assert _rows(text, "xgboost-h5") == [["xgboost-h5", "+0.0100 → +0.0300", "+1.20 → +2.10", "+0.0200", "+0.50", "+0.0200", "⚑ now significant (p < 0.05)"]]
    assert _rows(text, "lstm-h5") == []  # its headline numbers did not move
    assert _rows(text, "params.yaml") == [["params.yaml", "models.xgboost.max_depth", "4", "6"]]
    assert "| metrics/eval/xgboost-h5.json | rank_ic | 0.01 | 0.03 |" in text  # the details
    assert "Cut here" not in text


def test_no_changes(repo):
    text, ok = build_report(base="pr", repo=repo)
    assert ok and "No model's headline numbers moved." in text and "No params changes." in text and "No metrics changes." in text


def test_bad_base_fails_clearly(repo, tmp_path, monkeypatch):
    text, ok = build_report(base="no-such-branch", repo=repo)
    assert not ok
    assert "`dvc metrics diff no-such-branch --all --json` failed:" in text and "unknown Git revision 'no-such-branch'" in text
    monkeypatch.chdir(repo)
    out = tmp_path / "report.md"
    with pytest.raises(SystemExit) as exc:
        main(["--base", "no-such-branch", "--output", str(out)])
    assert exc.value.code == 1 and "unknown Git revision" in out.read_text()


def _full_rerun_diff(n_items: int = 34, n_keys: int = 400) -> dict:
    """A metrics diff like a change that moves every result: each item's headline file and
    hundreds of further changed keys per item (as per-year and per-fold detail would give)."""
    diff: dict = {}
    for i in range(n_items):
        item = f"model_{i:02d}-h{5 if i % 2 else 20}"
        diff[f"metrics/eval/{item}.json"] = {k: {"old": 0.01 * i, "new": 0.01 * i + 0.001 * (i % 7 + 1), "diff": 0.001} for k in ("rank_ic", "rank_ic_t", "val_rank_ic", "sharpe", "ic", "log_loss")}
        diff[f"metrics/detail/{item}.json"] = {f"test_by_year.{2000 + j // 20}.metric_{j % 20}": {"old": j * 1e-4, "new": j * 1.1e-4, "diff": j * 1e-5} for j in range(n_keys)}
    for h in ("h5", "h20"):
        diff[f"metrics/summary/{h}.json"] = {"selected": {"old": "model_01", "new": "model_03"}}
    return diff


def test_a_full_rerun_still_fits_in_a_comment(tmp_path):
    diff = _full_rerun_diff()
    assert len(json.dumps(diff)) > 1_000_000  # as large as a real rerun's (1.3 MB as dvc's Markdown)

    def fake_run(cmd, **kwargs):
        out = diff if "metrics" in cmd else {"params.yaml": {"train.lr": {"old": 0.001, "new": 0.0005}}}
        return subprocess.CompletedProcess(cmd, 0, json.dumps(out), "")

    text, ok = build_report(base="main", repo=tmp_path, run=fake_run)
    assert ok and len(text) <= COMMENT_LIMIT
    assert len(_rows(text, "model_33-h5")) == 1 and "**Cut here:**" in text and "job summary" in text
    lines = [line for line in text.splitlines() if line.startswith("| model_")]
    deltas = [abs(float(line.split("|")[6])) for line in lines]
    assert deltas == sorted(deltas, reverse=True)  # largest moves first
    full, _ = build_report(base="main", repo=tmp_path, run=fake_run, limit=10_000_000)
    assert "Cut here" not in full and full.count("| metrics/detail/") == 34 * 399  # key 0 is unchanged (0 -> 0)


def test_failure_uses_stderr_last_line():
    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 255, "", "noise\nERROR: something broke\n\n")

    text, ok = build_report(base="main", repo=Path("."), run=fake_run)
    assert not ok and text.count("failed: ERROR: something broke") == 2 and "noise" not in text


def test_stale_stages_from_dvc_status():
    status = {
        "ingest": [{"changed outs": {"data/raw/bars.parquet": "deleted"}}],  # a clone without data: fine
        "train@xgboost-5": [{"changed deps": {"data/windows": "deleted", "src/trendfactory/models/zoo/xgboost.py": "modified"}}],
        "train@lstm": [{"changed deps": {"params.yaml": {"train.lr": "modified"}}}],
        "compare": ["changed command"],
        "evaluate@xgboost-5": [{"changed deps": {"models/xgboost-h5": "deleted"}}, {"changed outs": {"x": "deleted"}}],
        # a folder of git-tracked metrics beside cached plots, in a clone without data: "modified"
        "ensemble@5": [{"changed deps": {"metrics/eval": "modified", "src/trendfactory/stages/ensemble.py": "new"}}],
        "report@5": [{"changed deps": {"metrics/eval": "modified", "models": "modified"}}],
    }
    outputs = {"metrics/eval/xgboost-h5/plots", "metrics/eval/xgboost-h5.json", "models/xgboost-h5", "data/windows"}
    assert stale_stages(status, outputs) == ["compare", "ensemble@5", "train@lstm", "train@xgboost-5"]


def test_check_lock_on_a_real_repo(repo):
    """Without the stage's output (a bare clone) the lock is fresh; a code edit makes it stale.
    (The project's own bare clone is checked too: .ci/run's clone has no data.)"""
    _sh(repo, "git", "checkout", "-q", "main")
    (repo / "out.txt").unlink(missing_ok=True)
    assert check_lock(repo) == ([], None)
    (repo / "src.py").write_text("print('changed')\n")
    try:
        assert check_lock(repo) == (["train"], None)
    finally:
        _sh(repo, "git", "checkout", "-q", "--", "src.py")
        _sh(repo, "git", "checkout", "-q", "pr")


def test_the_projects_own_lock_is_fresh_in_a_bare_clone(tmp_path):
    """The committed dvc.lock matches the committed code and params, checked as the PR job does:
    in a clone with no data at all."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    _sh(tmp_path, "git", "clone", "-q", str(root), str(clone))
    stale, error = check_lock(clone)
    assert error is None and stale == [], f"dvc.lock is stale for {stale}: run `dvc repro` and commit dvc.lock"


def test_details_round_the_difference_to_the_values_precision():
    metrics = {
        "metrics/eval/x-h5.json": {
            "rank_ic": {"old": 0.01, "new": 0.01015, "diff": 0.00014999999999998348},
            "sharpe": {"old": 0.5, "new": 0.25, "diff": -0.25},
            "selected": {"old": "a", "new": "b"},
            "dates": {"old": 1000, "new": 1001, "diff": 1},
        }
    }
    rows = detail_rows(metrics)
    assert "| metrics/eval/x-h5.json | rank_ic | 0.01 | 0.01015 | 0.00015 |" in rows
    assert "| metrics/eval/x-h5.json | sharpe | 0.5 | 0.25 | -0.25 |" in rows
    assert "| metrics/eval/x-h5.json | dates | 1000 | 1001 | 1 |" in rows
    assert "| metrics/eval/x-h5.json | selected | a | b | — |" in rows
