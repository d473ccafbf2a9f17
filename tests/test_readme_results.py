"""The README's results section is written from metrics/compare.json, never by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trendfactory import cli
from trendfactory.errors import TrendfactoryError
from trendfactory.evaluation.results import BEGIN, END, render_readme, results_section

ROOT = Path(__file__).resolve().parents[1]


def _compare(ric: float = 0.0123, p: float = 0.21, survives: bool = False) -> dict:
    fold = {
        "fold": 0,
        "chosen": "gru",
        "val_rank_ic": 0.031,
        "runner_up": "lstm",
        "runner_up_val_rank_ic": 0.029,
        "seed_spread": 0.004,
        "coin_flip": True,
        "window": ["2005-01-03", "2006-12-29"],
        "test": ["2007-01-02", "2010-12-31"],
    }
    summary = {
        "selected": "gru",
        "rank_ic": ric,
        "rank_ic_t": 1.3,
        "rank_ic_p": p,
        "sharpe": 0.4,
        "lead": 0.01,
        "spa_p": 0.31,
        "survives": survives,
        "dsr": 0.12,
        "in_mcs": True,
        "test_best": "tcn",
        "detectable_rank_ic": 0.0271,
        "selection": {"rank_ic": ric, "rank_ic_t": 1.3, "rank_ic_p": p, "rank_ic_lo": -0.004, "rank_ic_hi": 0.0286, "ic": 0.01, "sharpe": 0.4, "sharpe_lo": -0.2, "sharpe_hi": 1.0, "dates": 1000},
        "folds": [fold],
        "baseline": {"selected": "momentum", "rank_ic": 0.002},
        "baseline_folds": [],
        "mcs": ["gru"],
    }
    items = {
        "tcn-h5": {"model": "tcn", "family": "neural", "horizon": 5, "seeds": 2, "test_rank_ic": 0.03, "test_rank_ic_p": 0.04},
        "gru-h5": {"model": "gru", "family": "neural", "horizon": 5, "seeds": 2, "test_rank_ic": ric, "test_rank_ic_p": p},
        "momentum-h5": {"model": "momentum", "family": "baseline", "horizon": 5, "seeds": 1, "test_rank_ic": 0.002},
    }
    return {"summary": {"h5": summary}, "items": items}


def test_the_committed_readme_equals_compare_json():
    text = (ROOT / "README.md").read_text()
    compare = json.loads((ROOT / "metrics" / "compare.json").read_text())
    assert render_readme(text, compare) == text, "README.md's results section differs from metrics/compare.json: run `trendfactory results`"


def test_every_figure_comes_from_the_file():
    section = results_section(_compare())
    for figure in ("+0.0123", "[-0.0040, +0.0286]", "+1.30 (0.210)", "momentum (+0.0020)", "0.310", "0.12", "0.0271", "gru (+0.0310) ~", "tcn (Rank IC +0.0300, p 0.040)", "gru vs lstm"):
        assert figure in section
    assert "Plainly: nothing survives" in section and "tcn at h = 5 (p 0.040)" in section
    assert "survives every check at h = 5" in results_section(_compare(survives=True))
    # no number in the section that the file does not hold (dates, counts and the fixed levels aside)
    allowed = {"80", "0.05", "5", "90", "2", "1", "0.1", "2007", "01", "02", "2010", "12", "31"}
    numbers = set(re.findall(r"\d+(?:\.\d+)?", section.replace(BEGIN, "").replace(END, "")))
    held = set(re.findall(r"\d+(?:\.\d+)?", json.dumps(_compare())))
    formatted = {f"{float(n):.4f}" for n in held if "." in n} | {f"{float(n):.3f}" for n in held if "." in n} | {f"{float(n):.2f}" for n in held if "." in n}
    assert numbers - allowed - held - formatted - {n.lstrip("0") for n in formatted} == set()


def test_markers_are_required_and_the_cli_checks_and_rewrites(tmp_path, capsys):
    with pytest.raises(TrendfactoryError, match="expected one results section"):
        render_readme("# no markers\n", _compare())
    readme, compare = tmp_path / "README.md", tmp_path / "compare.json"
    readme.write_text(f"# x\n\nprose\n\n{BEGIN}\nstale 0.049\n{END}\n\nmore prose\n")
    compare.write_text(json.dumps(_compare()))
    args = ["results", "--readme", str(readme), "--compare", str(compare)]
    with pytest.raises(SystemExit) as stop:
        cli.main([*args, "--check"])
    assert stop.value.code == 1 and "differs from" in capsys.readouterr().err
    cli.main(args)
    text = readme.read_text()
    assert "stale 0.049" not in text and text.startswith("# x\n\nprose\n\n") and text.endswith("\n\nmore prose\n")
    cli.main([*args, "--check"])  # equal now
    assert "equals" in capsys.readouterr().out
