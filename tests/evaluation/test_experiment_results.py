"""Experiments' results on the docs pages come from snapshots of their metrics, never by hand.

A tiny real DVC repository (one stage writing metrics/compare.json from its params) runs real
``dvc exp run -S`` experiments; snapshots are read from their git refs, and the sections are
rendered from the snapshots. The committed docs must equal their committed snapshots.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from tests.pipeline_helpers import repo_env, run_ok
from trendfactory.cli import main
from trendfactory.errors import TrendfactoryError
from trendfactory.evaluation.results import BEGIN, END
from trendfactory.evaluation.experiment_results import SECTION, _against_default, _paired, render_page, section, snapshot, update_pages

ROOT = Path(__file__).resolve().parents[2]

STAGE = textwrap.dedent("""
    import json, os, yaml
    p = yaml.safe_load(open("params.yaml"))
    g = p["models"]["tower"]["gamma"]
    os.makedirs("metrics", exist_ok=True)
    items, summary = {}, {}
    for i, m in enumerate(p["run"]["models"]):
        for h in (5, 20):
            ric = round(0.001 * (i + 1) * h / 5 + 0.01 * g, 6)
            items[f"{m}-h{h}"] = {"model": m, "family": "neural", "horizon": h, "seeds": 2, "val_rank_ic": round(ric / 2, 6),
                                  "test_rank_ic": ric, "test_rank_ic_lo": round(ric - 0.02, 6), "test_rank_ic_hi": round(ric + 0.02, 6),
                                  "test_rank_ic_t": 1.5, "test_rank_ic_p": 0.137, "test_macro_f1": 0.3125, "test_sharpe": 0.25,
                                  "test_sharpe_lo": -0.5, "test_sharpe_hi": 1.0}
    for h in (5, 20):
        fold = {"fold": 0, "chosen": p["run"]["models"][-1], "val_rank_ic": 0.0123, "coin_flip": False, "test": ["2007-01-02", "2010-12-31"]}
        summary[f"h{h}"] = {"folds": [fold], "selection": {"rank_ic": 0.0042}, "survives": False}
    json.dump({"items": items, "summary": summary}, open("metrics/compare.json", "w"))
""")
DVC_YAML = textwrap.dedent("""
    stages:
      compare:
        cmd: python make.py
        deps: [make.py]
        params: [models.tower.gamma, run.models]
        metrics:
          - metrics/compare.json:
              cache: false
""")
PARAMS = "seed: 42\nrun:\n  models: [alpha, tower]\nmodels:\n  tower:\n    gamma: 0.01\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("experiments")
    env = repo_env()
    (root / "make.py").write_text(STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(PARAMS)
    dvc = [sys.executable, "-m", "dvc"]
    for cmd in (["git", "init", "-q"], [*dvc, "init", "-q"], [*dvc, "repro", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "baseline"]):
        run_ok(cmd, root, env)
    for name, sets in (("g0", ["models.tower.gamma=0"]), ("g1", ["models.tower.gamma=1"]), ("more", ["run.models=[alpha,tower,gamma_net]"])):
        run_ok(["git", "reset", "-q", "--hard"], root, env)  # each from the baseline, as queued experiments are
        run_ok([*dvc, "exp", "run", "-q", "-n", name, *[a for s in sets for a in ("-S", s)]], root, env)
    # one more commit and an experiment on it: a snapshot must not mix baselines
    run_ok(["git", "reset", "-q", "--hard"], root, env)
    (root / "notes.txt").write_text("later\n")
    run_ok(["git", "add", "notes.txt"], root, env)
    run_ok(["git", "commit", "-qm", "later"], root, env)
    run_ok([*dvc, "exp", "run", "-q", "-n", "later", "-S", "models.tower.gamma=2"], root, env)
    return root


def test_a_snapshot_holds_each_experiment_and_their_baseline(repo):
    snap = snapshot(["g0", "g1"], "variants", ["tower"], repo)
    assert [r["name"] for r in snap["runs"]] == ["baseline", "g0", "g1"]
    assert snap["runs"][1]["changed"] == {"models.tower.gamma": [0.01, 0]}
    assert all(set(r["compare"]["items"]) == {"tower-h5", "tower-h20"} for r in snap["runs"])
    assert snap["runs"][2]["compare"]["items"]["tower-h5"]["test_rank_ic"] == pytest.approx(0.002 + 0.01)


def test_variants_section_quotes_the_snapshot(repo):
    text = section("ablation", snapshot(["g0", "g1"], "variants", ["tower"], repo), "results/ablation.json")
    assert "| `gamma=0` | 5 | +0.0010 | +0.0020 [-0.0180, +0.0220] | +1.50 (0.137) | 0.3125 | +0.25 [-0.50, +1.00] |" in text
    assert "| default | 20 |" in text and "| `gamma=1` | 20 |" in text
    # h = 5: test Rank IC 0.0021 (default), 0.0020 (g0), 0.0120 (g1); chosen on validation: g1
    assert "spans +0.0020 … +0.0120, a spread of 0.0100, less than the narrowest 90 % interval's half-width (0.0200): no variant stands out" in text
    assert "Chosen on validation, the variant would be `gamma=1` (val +0.0060, test +0.0120)" in text


def test_added_section_lists_only_the_added_models_then_the_verdict(repo):
    text = section("full", snapshot(["more"], "added", repo=repo), "results/full.json")
    assert "| gamma_net | +0.0015 | +0.0031 [-0.017, +0.023] | +1.50 (0.137) | +0.25 | +0.0060 | +0.0121 [-0.008, +0.032] |" in text
    assert "| alpha |" not in text and "| tower |" not in text
    assert "| 5 | gamma_net (+0.0123)" in text and "6 non-baseline items" in text and "nothing survives" in text


def test_experiments_of_two_baselines_or_unknown_names_are_refused(repo):
    with pytest.raises(TrendfactoryError, match="ran on 2 different commits"):
        snapshot(["g0", "later"], "variants", ["tower"], repo)
    with pytest.raises(TrendfactoryError, match="no experiment named 'nope'.*dvc exp list"):
        snapshot(["nope"], "added", repo=repo)
    with pytest.raises(TrendfactoryError, match="needs --models"):
        snapshot(["g0"], "variants", None, repo)
    with pytest.raises(TrendfactoryError, match="no item of ghost"):
        snapshot(["g0"], "variants", ["ghost"], repo)


def test_cli_saves_renders_and_checks_a_page(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    main(["results", "--save", "ablation", "--experiments", "g0", "g1", "--view", "variants", "--models", "tower"])
    assert json.loads((repo / "docs/results/ablation.json").read_text())["view"] == "variants"
    (repo / "docs/page.md").write_text("# Page\n\nWords.\n\n<!-- experiment:ablation:begin -->\n<!-- experiment:ablation:end -->\n\nMore words.\n")
    (repo / "README.md").write_text(f"# Readme\n\n{BEGIN}\n{END}\n")
    with pytest.raises(SystemExit):
        main(["results", "--check"])
    assert re.search(r"^error: .*docs/page.md: its experiment sections differ from docs/results/; run `trendfactory results`", capsys.readouterr().err)
    main(["results"])
    page = (repo / "docs/page.md").read_text()
    assert "[`docs/results/ablation.json`](results/ablation.json)" in page and page.endswith("More words.\n")
    main(["results", "--check"])
    assert "equal docs/results/" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["results", "--save", "a b", "--experiments", "g0"])
    assert "--save 'a b': a name of letters" in capsys.readouterr().err


def test_a_section_without_its_snapshot_is_one_line(tmp_path):
    text = "<!-- experiment:gone:begin -->\n<!-- experiment:gone:end -->\n"
    with pytest.raises(TrendfactoryError, match=r"page.md: section 'gone' needs .*gone.json; write it with `trendfactory results --save"):
        render_page(text, tmp_path / "page.md", tmp_path)


def test_the_committed_docs_equal_their_snapshots():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert update_pages(pages, check=True, results_dir=ROOT / "docs" / "results") == [], "run `trendfactory results` and commit"
    names = {m["name"] for p in pages for m in SECTION.finditer(p.read_text())}
    assert names == {p.stem for p in (ROOT / "docs" / "results").glob("*.json")}, "every snapshot is shown on a page, every section has one"


def test_variants_do_not_repeat_rows_the_variant_left_unchanged(repo):
    text = section("tuned", snapshot(["more"], "variants", ["tower", "gamma_net"], repo), "x")
    assert text.count("| default | tower |") == 2
    assert text.count('| `run.models=["alpha", "tower", "gamma_net"]` | gamma_net |') == 2
    assert '| `run.models=["alpha", "tower", "gamma_net"]` | tower |' not in text


def test_variants_of_several_models_are_compared_model_by_model():
    """With several models, a variant is judged against each model's own default (how many rose,
    by how much, beyond which model's interval), not by the spread across models."""

    def item(val, test, half):
        return {"val_rank_ic": val, "test_rank_ic": test, "test_rank_ic_lo": test - half, "test_rank_ic_hi": test + half}

    base = {"changed": {}, "compare": {"items": {"a-h5": item(0.01, 0.010, 0.02), "b-h5": item(0.00, 0.020, 0.01), "c-h5": item(0.02, 0.0, 0.01)}}}
    run = {"changed": {"train.monitor": ["loss", "rank_ic"]}, "compare": {"items": {"a-h5": item(0.03, 0.015, 0.02), "b-h5": item(0.01, 0.005, 0.01), "c-h5": item(0.01, 0.0, 0.01)}}}
    text = _paired(base, run, ["a", "b", "c"], 5, "`train.monitor=rank_ic`")
    assert text == (
        "At h = 5, `train.monitor=rank_ic` against the default, model by model: the validation Rank IC rose for 2 of 3 models (mean change +0.0067), "
        "the test Rank IC for 1 of 3 (mean change -0.0033, from -0.0150 to +0.0050); the test change exceeds the default's 90 % half-width for b (-0.0150)."
    )
    run["compare"]["items"]["b-h5"] = item(0.01, 0.015, 0.01)
    assert _paired(base, run, ["a", "b", "c"], 5, "x").endswith("no model's test change exceeds the default's own 90 % half-width.")
    assert _paired(base, run, ["zzz"], 5, "x") == "At h = 5, x: no model has a validation and test Rank IC in both runs."


def test_curves_section_marks_the_best_epoch_and_counts_first_epoch_stops():
    snap = {
        "view": "curves",
        "commit": "abcdef0123",
        "fold": 2,
        "train": ["1990-01-02", "2012-11-29"],
        "val": ["2013-01-16", "2014-12-01"],
        "runs": [
            {"model": "mlp", "lr": 0.001, "default": True, "train_loss": [1.09, 1.07, 1.05], "val_loss": [1.0821, 1.0902, 1.1], "val_rank_ic": [0.031, None, -0.01]},
            {"model": "mlp", "lr": 0.0001, "default": False, "train_loss": [1.09, 1.095, 1.08], "val_loss": [1.09, 1.085, 1.0841], "val_rank_ic": [0.02, 0.021, 0.022]},
        ],
        "stopped": {"patience": 1, "models": ["mlp", "lstm"], "fits": 12, "first": 11},
    }
    text = section("lc", snap, "results/lc.json")
    assert "| mlp | 1e-03 (default) | **1.082** 1.090 1.100 | +0.031 n/a -0.010 |" in text
    assert "| mlp | 1e-04 | 1.090 1.085 **1.084** |" in text
    assert "mlp at lr 1e-03: the train loss falls at every epoch (1.090 → 1.050); the validation loss is lowest at epoch 1 (1.0821)" in text
    assert "and ends at 1.1000; the validation Rank IC is highest at epoch 1 (+0.0310)." in text
    assert "both heads' mean (a uniform guess's log loss is 1.0986)" in text and "highest at epoch 3 (+0.0220)" in text
    assert "mlp at lr 1e-04: the train loss does not fall at every epoch" in text
    assert "train 1990-01-02 … 2012-11-29, validation 2013-01-16 … 2014-12-01, 3 epochs" in text
    assert "11 of the 12 network fits (mlp, lstm × folds × seeds) kept their first epoch" in text
    with pytest.raises(TrendfactoryError, match="view 'nope' is not one of"):
        section("lc", {**snap, "view": "nope"}, "x")


def test_a_tuned_variant_is_judged_by_its_paired_lead_over_its_default():
    r = {"default_model": "lgb", "lead_over_default": 0.0042, "lead_over_default_lo": 0.0011, "lead_over_default_hi": 0.0073, "lead_over_default_t": 2.31, "lead_over_default_p": 0.021}
    assert _against_default("`run.tune=[lgb]` lgb_tuned", r, 5) == (
        "At h = 5, `run.tune=[lgb]` lgb_tuned minus lgb on the same test dates (paired): +0.0042 [+0.0011, +0.0073], t +2.31 (p 0.021): significant at 5 %: better."
    )
    r.update(lead_over_default=-0.001, lead_over_default_lo=-0.004, lead_over_default_hi=0.002, lead_over_default_t=-0.6, lead_over_default_p=0.55)
    assert _against_default("x", r, 20).endswith("-0.0010 [-0.0040, +0.0020], t -0.60 (p 0.550): not significant at 5 %.")
    r.update(lead_over_default=0.0, lead_over_default_lo=None, lead_over_default_hi=None, lead_over_default_t=None, lead_over_default_p=None)
    assert _against_default("x", r, 5) == "At h = 5, x equals lgb on every test date (its studies kept the default's params)."


def test_the_variants_section_of_a_tuning_experiment_quotes_the_paired_lead():
    def row(model, test, **extra):
        return {"model": model, "horizon": 5, "val_rank_ic": 0.0, "test_rank_ic": test, "test_rank_ic_lo": test - 0.01, "test_rank_ic_hi": test + 0.01, **extra}

    lead = {"default_model": "lgb", "lead_over_default": 0.002, "lead_over_default_lo": -0.001, "lead_over_default_hi": 0.005, "lead_over_default_t": 1.1, "lead_over_default_p": 0.27}
    base = {"name": "baseline", "commit": "a" * 40, "changed": {}, "compare": {"items": {"lgb-h5": row("lgb", 0.001)}}}
    tuned = {"name": "tune", "commit": "b" * 40, "changed": {"run.tune": [[], ["lgb"]]}, "compare": {"items": {"lgb-h5": row("lgb", 0.001), "lgb_tuned-h5": row("lgb_tuned", 0.003, **lead)}}}
    text = section("tuning", {"view": "variants", "models": ["lgb", "lgb_tuned"], "baseline": "a" * 40, "runs": [base, tuned]}, "results/tuning.json")
    assert '`run.tune=["lgb"]` lgb_tuned minus lgb on the same test dates (paired): +0.0020 [-0.0010, +0.0050], t +1.10 (p 0.270): not significant at 5 %.' in text
    assert text.count("on the same test dates (paired)") == 1  # the default's own row carries no lead
