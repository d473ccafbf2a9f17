"""The comparison page: rows, ordering, baselines, verdicts, score correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.evaluation.compare import Item, best_baseline, compare_rows, comparison_markdown, rows_of_horizon, score_correlations


def _item(model, family, h, rank_ic, t=None, sharpe=0.1):
    test = {"rank_ic": rank_ic, "rank_ic_tstat_nw": t, "ic": rank_ic, "sharpe": sharpe, "balanced_accuracy": 0.34}
    return Item(model=model, family=family, horizon=h, metrics={"val": {"rank_ic": 0.01}, "test": test}, fit_seconds=1.5)


@pytest.fixture
def rows():
    return compare_rows([
        _item("majority", "baseline", 5, None),
        _item("momentum", "baseline", 5, 0.010, 0.5),
        _item("xgboost", "boosting", 5, 0.030, 2.5),
        _item("logistic", "classical", 5, 0.005, 0.3),
        _item("momentum", "baseline", 20, 0.040, 3.0),
        _item("xgboost", "boosting", 20, 0.020, 1.0),
    ])


def test_rows_are_flat_and_keyed_by_item(rows):
    assert set(rows) == {"majority-h5", "momentum-h5", "xgboost-h5", "logistic-h5", "momentum-h20", "xgboost-h20"}
    r = rows["xgboost-h5"]
    assert r["test_rank_ic"] == 0.03 and r["val_rank_ic"] == 0.01 and r["fit_seconds"] == 1.5 and r["test_sharpe"] == 0.1
    assert r["test_log_loss"] is None  # missing metrics are None, never NaN
    assert rows["majority-h5"]["test_rank_ic"] is None


def test_ordering_puts_undefined_last(rows):
    assert [r["model"] for r in rows_of_horizon(rows, 5)] == ["xgboost", "momentum", "logistic", "majority"]
    assert best_baseline(rows_of_horizon(rows, 5))["model"] == "momentum"


def test_markdown_names_winners_and_says_when_nothing_beats_the_baselines(rows):
    md = comparison_markdown(rows, {}, cost_bps=5)
    assert "## Horizon 5 bars" in md and "## Horizon 20 bars" in md
    assert "**Best at h=5: xgboost** — test Rank IC +0.0300 (NW t +2.50)" in md
    assert "lead +0.0200. Above the best baseline: xgboost; Rank IC significantly above zero (NW t > 2): xgboost." in md
    assert "**Best at h=20: xgboost**" in md and "lead -0.0200. Above the best baseline: none; Rank IC significantly above zero (NW t > 2): none." in md
    assert "| *momentum* | baseline |" in md and "| **xgboost** | boosting |" in md
    table = md.split("## Horizon 5 bars")[1]
    assert table.index("xgboost") < table.index("momentum") < table.index("logistic") < table.index("majority")


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
