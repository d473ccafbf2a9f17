"""The command line's path errors: a wrong file, folder or output path given to a command is one
`error:` line naming the option, the value and the fix, and exit 1 — never a traceback, and for
predict never after the scoring work. (The errors of a trained project — an untrained model or
horizon — are in tests/test_predict.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from trendfactory.cli import main


def _error(capsys, argv: list[str]) -> str:
    """The one line a failing command prints (exit code 1)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert captured.out == ""
    return err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bars.csv").write_text("symbol,datetime,close\nA,2020-01-02,1.0\n")
    return tmp_path


def test_check_params_directory(in_tmp, capsys):
    (in_tmp / "conf").mkdir()
    err = _error(capsys, ["check", "--params", "conf"])
    assert err == "error: --params conf: a directory, not a file; pass the params file, e.g. --params params.yaml"


@pytest.mark.parametrize("make_dir", [False, True], ids=["missing", "directory"])
def test_results_readme_not_a_file(in_tmp, capsys, make_dir):
    (in_tmp / "metrics").mkdir()
    (in_tmp / "metrics/compare.json").write_text("{}")
    if make_dir:
        (in_tmp / "missing.md").mkdir()
    err = _error(capsys, ["results", "--check", "--readme", "missing.md"])
    what = "a directory, not a file" if make_dir else "no such file"
    assert err == f"error: --readme missing.md: {what}; run from the project root (where README.md is) or pass --readme <the README file>"


@pytest.mark.parametrize("command", ["validate", "predict"])
def test_missing_input_names_the_option(in_tmp, capsys, command):
    extra = ["--model", "xgboost", "--horizon", "5"] if command == "predict" else []
    err = _error(capsys, [command, *extra, "--input", "nope.csv"])
    assert err == "error: --input nope.csv: no such file or directory; pass a CSV/Parquet file of bars, or a directory with one file per symbol"
    assert "data.path" not in err


def _predict(output: str) -> list[str]:
    return ["predict", "--model", "xgboost", "--horizon", "5", "--input", "bars.csv", "--output", output]


def test_predict_output_under_a_file_fails_before_scoring(in_tmp, capsys):
    # no trained project here: any scoring work would fail with another message
    err = _error(capsys, _predict("bars.csv/scores.csv"))
    assert err == "error: --output bars.csv/scores.csv: bars.csv is a file, not a directory; pass a path inside a directory you can write to"


def test_predict_output_that_is_a_directory(in_tmp, capsys):
    (in_tmp / "out").mkdir()
    err = _error(capsys, _predict("out"))
    assert err == "error: --output out: a directory; name the predictions file, e.g. --output out/predictions.csv"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no directory can be made")
def test_predict_output_in_an_unwritable_place(in_tmp, capsys):
    err = _error(capsys, _predict("/proc/nope/x.csv"))
    assert err.startswith("error: --output /proc/nope/x.csv: cannot write in /proc/nope (") and err.endswith("); pass a path inside a directory you can write to")


def test_predict_output_check_leaves_no_folder_behind(in_tmp, capsys):
    # the output's new folders can be made, so the next check (the params file) fails; they are gone again
    err = _error(capsys, _predict("new/sub/scores.csv"))
    assert err.startswith("error: --params params.yaml: no such file;")
    assert not (in_tmp / "new").exists()


def test_export_output_in_an_unwritable_place(in_tmp, capsys):
    err = _error(capsys, ["export", "--model", "lstm", "--horizon", "5", "--output", "bars.csv/exported"])
    assert err == "error: --output bars.csv/exported: bars.csv is a file, not a directory; pass a path inside a directory you can write to"
