"""The comparison: selection on validation, the baseline bar, the gate, the verdict, the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.evaluation.compare import Item, comparison_markdown, gate, horizon_verdict, item_row, score_correlations, trial_sharpes

DATES = pd.bdate_range("2010-01-01", periods=900)
REPS = 200  # bootstrap resamples: enough for these clear-cut cases, fast


def _item(model, family, h, val_ric, test_ric, seed, val_f1=0.36, val_sharpe=0.5, noise=0.15):
    """An item whose daily test Rank IC is test_ric + iid noise (None: constant scores, no IC)."""
    rng = np.random.default_rng(seed)
    if test_ric is None:
        daily = pd.DataFrame({"rank_ic": np.nan, "ic": np.nan, "net": 0.0}, index=DATES)
    else:
        ric = test_ric + noise * rng.standard_normal(len(DATES))
        daily = pd.DataFrame({"rank_ic": ric, "ic": ric, "net": 0.002 * ric + 0.004 * rng.standard_normal(len(DATES))}, index=DATES)
    metrics = {
        "val": {"rank_ic": val_ric, "macro_f1": val_f1, "sharpe": val_sharpe},
        "test": {"rank_ic": None if test_ric is None else float(daily["rank_ic"].mean()),
                 "sharpe": None if test_ric is None else float(daily["net"].mean() / daily["net"].std() * np.sqrt(252))},
    }
    return Item(model=model, family=family, horizon=h, metrics=metrics, daily={"test": daily})


def _rows(items):
    return {it.key: item_row(it, 252, REPS, 0) for it in items}


def test_selection_uses_validation_and_test_best_is_only_labelled():
    items = [
        _item("majority", "baseline", 5, None, None, 0),
        _item("momentum", "baseline", 5, 0.005, 0.0, 1),
        _item("steady", "boosting", 5, 0.030, 0.03, 2),  # best on validation
        _item("lucky", "neural", 5, -0.010, 0.06, 3),  # worst on validation, best on test
        _item("noise", "classical", 5, 0.010, 0.0, 4),
    ]
    rows = _rows(items)
    n, var = trial_sharpes(rows, 252)
    v = horizon_verdict(items, rows, n, var, REPS, 0)
    assert v["selected"] == "steady" and v["test_best"] == "lucky"
    assert v["spa_benchmark"] == "momentum"  # the baseline chosen on validation
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 3)
    assert "selected on validation — steady" in md
    assert "The best on test was lucky" in md and "not a choice" in md
    assert "| steady ✓ |" in md and "| lucky † |" in md


def test_beating_the_baselines_needs_a_positive_rank_ic_and_a_lead():
    items = [
        _item("momentum", "baseline", 20, 0.0, -0.04, 1, noise=0.01),
        _item("negative", "boosting", 20, 0.02, -0.02, 2, noise=0.01),  # above momentum, still negative
        _item("positive", "neural", 20, 0.01, 0.02, 3, noise=0.01),
    ]
    rows = _rows(items)
    v = horizon_verdict(items, rows, *trial_sharpes(rows, 252), REPS, 0)
    assert v["beats_baselines"] == ["positive"]
    assert v["selected"] == "negative" and not v["survives"] and not v["checks"]["beats_baselines"]


def test_a_strong_signal_survives_and_noise_does_not():
    strong = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 1),
        _item("real", "boosting", 5, 0.05, 0.06, 2, noise=0.1),
        _item("other", "classical", 5, 0.01, 0.0, 3),
    ]
    rows = _rows(strong)
    v = horizon_verdict(strong, rows, *trial_sharpes(rows, 252), REPS, 0)
    assert v["selected"] == "real"
    assert v["checks"]["rank_ic_positive_and_significant"] and v["checks"]["spa"] and v["checks"]["in_mcs"]
    assert rows["real-h5"]["test_rank_ic_lo"] > 0  # the 90 % interval excludes zero
    noise = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 11),
        _item("a", "boosting", 5, 0.02, 0.0, 12),
        _item("b", "classical", 5, 0.01, 0.0, 13),
    ]
    rows = _rows(noise)
    v = horizon_verdict(noise, rows, *trial_sharpes(rows, 252), REPS, 0)
    assert not v["survives"]
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 2)
    assert md.index("## Verdict") < md.index("## Horizon 5 bars")
    assert "**Does not survive:**" in md and "no model selected on validation survives" in md


def test_gate_needs_both_validation_f1_and_sharpe_at_some_horizon():
    rows = {
        "a-h5": {"model": "a", "val_macro_f1": 0.36, "val_sharpe": 0.2},
        "a-h20": {"model": "a", "val_macro_f1": 0.40, "val_sharpe": 0.31},
        "b-h5": {"model": "b", "val_macro_f1": 0.34, "val_sharpe": 1.0},
        "c-h5": {"model": "c", "val_macro_f1": None, "val_sharpe": None},
    }
    assert gate(list(rows.values())) == {"a": True, "b": False, "c": False}


def test_tables_have_at_most_ten_columns():
    items = [_item("momentum", "baseline", 5, 0.0, 0.0, 1), _item("x", "boosting", 5, 0.01, 0.01, 2)]
    rows = _rows(items)
    v = horizon_verdict(items, rows, *trial_sharpes(rows, 252), REPS, 0)
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 1)
    headers = [line for line in md.splitlines() if line.startswith("| model |")]
    assert headers and all(line.count("|") - 1 <= 10 for line in headers)


def test_score_correlations_on_shared_rows():
    keys = pd.DataFrame({"symbol": list("ABCD") * 5, "datetime": np.repeat(pd.date_range("2020-01-01", periods=5), 4)})
    rng = np.random.default_rng(0)
    a = rng.normal(size=20)
    preds = {
        "a": keys.assign(score=a),
        "same_rank": keys.assign(score=np.exp(a)),  # monotone transform: Spearman 1
        "reversed": keys.assign(score=-a),
        "constant": keys.assign(score=0.2),
    }
    c = score_correlations(preds)
    assert c.loc["a", "same_rank"] == pytest.approx(1.0) and c.loc["a", "reversed"] == pytest.approx(-1.0)
    assert np.isnan(c.loc["a", "constant"])
