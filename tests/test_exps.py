"""trendfactory.exps: `trendfactory exps` on a real DVC repository with three experiments.

The repository is tiny (one stage that writes the project's metrics files from one param) but
the experiments are real `dvc exp run -S` runs and the table is built from DVC's own
`dvc exp show --json`, so a change in DVC's JSON layout fails here.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from tests.pipeline_helpers import repo_env, run_ok
from trendfactory.cli import main
from trendfactory.errors import TrendfactoryError
from trendfactory.exps import Row, render, show

STAGE = textwrap.dedent("""
    import json, os, yaml
    p = yaml.safe_load(open("params.yaml"))
    d = p["models"]["xgboost"]["max_depth"]
    os.makedirs("metrics/eval", exist_ok=True); os.makedirs("metrics/summary", exist_ok=True)
    for h in (5, 20):
        json.dump({"rank_ic": round(0.01 * d / h, 4), "rank_ic_p": 0.3}, open(f"metrics/eval/xgboost-h{h}.json", "w"))
        json.dump({"rank_ic": 0.001 * h, "rank_ic_p": 0.6}, open(f"metrics/eval/lstm-h{h}.json", "w"))
        json.dump({"selected": "xgboost", "rank_ic": round(0.01 * d / h, 4), "rank_ic_p": 0.04 * d,
                   "survives": d == 2}, open(f"metrics/summary/h{h}.json", "w"))
""")
DVC_YAML = textwrap.dedent("""
    stages:
      make:
        cmd: python make.py
        deps: [make.py]
        params: [models.xgboost.max_depth, train.lr]
        metrics:
          - metrics/eval:
              cache: false
          - metrics/summary:
              cache: false
""")
PARAMS = "seed: 42\nmodels:\n  xgboost:\n    max_depth: 4\n    learning_rate: 0.1\ntrain:\n  lr: 0.001\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exps")
    env = repo_env()
    (root / "make.py").write_text(STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(PARAMS)
    dvc = [sys.executable, "-m", "dvc"]
    run_ok(["git", "init", "-q"], root, env)
    run_ok([*dvc, "init", "-q"], root, env)
    run_ok([*dvc, "repro", "-q"], root, env)
    run_ok(["git", "add", "-A"], root, env)
    run_ok(["git", "commit", "-qm", "baseline"], root, env)
    for name, sets in (("deep6", ["models.xgboost.max_depth=6"]), ("shallow2", ["models.xgboost.max_depth=2"]), ("fast", ["models.xgboost.max_depth=8", "train.lr=0.01"])):
        run_ok([*dvc, "exp", "run", "-q", "-n", name, *[a for s in sets for a in ("-S", s)]], root, env)
    return root


def test_three_experiments_side_by_side_changed_params_first(repo):
    table = show(repo)
    lines = table.splitlines()
    assert max(map(len, lines)) <= 160
    header = lines[0].split()
    assert header[:3] == ["experiment", "xgboost.max_depth", "train.lr"]  # changed params first; learning_rate did not change
    assert "learning_rate" not in table and "seed" not in header
    assert header.index("h5") < header.index("xgboost-h5")  # the verdict before the items
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert {"deep6", "shallow2", "fast"} <= set(rows)
    assert rows["shallow2"][1] == "2" and rows["fast"][1:3] == ["8", "0.01"]
    assert "+0.0040" in rows["shallow2"] and "yes" in rows["shallow2"]  # h5 Rank IC 0.01*2/5, survives
    assert "lstm-h5" not in table  # an item that did not move takes no column


def test_narrow_terminal_names_what_was_left_out(repo):
    table = show(repo, width=70)
    assert max(map(len, table.splitlines())) <= 70
    note = table[table.index("not shown (") :]
    assert "xgboost-h20 rIC" in note and "--width" in note


def test_cli_prints_the_table_and_refuses_a_bad_dvc_option(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    main(["exps", "--width", "120"])
    assert "deep6" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["exps", "--", "--no-such-option"])
    assert "dvc exp show --json --no-such-option" in capsys.readouterr().err
    with pytest.raises(TrendfactoryError, match="unrecognized arguments"):
        show(repo, dvc_args=["--no-such-option"])


def test_render_orders_moved_items_by_spread():
    rows = [
        Row("a", {"x": 1}, {"metrics/eval/m-h5.json": {"rank_ic": 0.01}, "metrics/eval/n-h5.json": {"rank_ic": 0.0}}),
        Row("b", {"x": 2}, {"metrics/eval/m-h5.json": {"rank_ic": 0.02}, "metrics/eval/n-h5.json": {"rank_ic": 0.05}}),
    ]
    header = render(rows).splitlines()[0].split()
    assert header == ["experiment", "x", "n-h5", "rIC", "m-h5", "rIC"]
    assert render([]).startswith("no experiments")
