"""Averaging over seeds: metrics (mean and std), predictions and daily series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.evaluation.seeds import mean_daily, mean_metrics, mean_predictions, n_seeds, seed_frames


def _preds(seed: int, p_up: list[float]) -> pd.DataFrame:
    n = len(p_up)
    up = np.asarray(p_up)
    return pd.DataFrame(
        {
            "symbol": [f"S{i}" for i in range(n)],
            "datetime": pd.Timestamp("2020-01-02"),
            "horizon": 5,
            "pred": np.int8(0),
            "p_down": (1 - up) / 2,
            "p_flat": (1 - up) / 2,
            "p_up": up,
            "score": up,
            "label": np.int8(1),
            "ret": 0.01,
            "fold": np.int16(0),
            "seed": np.int16(seed),
        }
    )


def test_mean_metrics_average_numbers_and_give_their_spread():
    mean, std = mean_metrics([{"rank_ic": 0.01, "n": 10, "by": {"2020": {"ic": 0.1}}, "x": None}, {"rank_ic": 0.03, "n": 10, "by": {"2020": {"ic": 0.3}}, "x": None}])
    assert mean["rank_ic"] == pytest.approx(0.02) and std["rank_ic"] == pytest.approx(np.std([0.01, 0.03], ddof=1))
    assert mean["n"] == 10 and isinstance(mean["n"], int)
    assert mean["by"]["2020"]["ic"] == pytest.approx(0.2) and mean["x"] is None and std["x"] is None


def test_one_seed_is_its_own_mean_without_spread():
    mean, std = mean_metrics([{"rank_ic": 0.01, "by": {"a": 1.0}}])
    assert mean == {"rank_ic": 0.01, "by": {"a": 1.0}} and std == {"rank_ic": None, "by": {"a": None}}


def test_a_missing_number_is_left_out_of_the_mean():
    mean, _ = mean_metrics([{"sharpe": None}, {"sharpe": 1.0}, {"sharpe": float("nan")}])
    assert mean["sharpe"] == 1.0


def test_mean_predictions_average_probabilities_and_scores():
    frame = pd.concat([_preds(0, [0.1, 0.9]), _preds(1, [0.3, 0.1])], ignore_index=True)
    assert n_seeds(frame) == 2 and [len(f) for f in seed_frames(frame)] == [2, 2]
    out = mean_predictions(frame)
    assert len(out) == 2 and "seed" not in out.columns
    assert out["p_up"].tolist() == pytest.approx([0.2, 0.5]) and out["score"].tolist() == pytest.approx([0.2, 0.5])
    assert out["pred"].tolist() == [-1, 1]  # the class of the mean probabilities (0.4, 0.4, 0.2) and (0.25, 0.25, 0.5)
    np.testing.assert_allclose(out[["p_down", "p_flat", "p_up"]].sum(axis=1), 1.0)
    assert (out["label"] == 1).all() and (out["fold"] == 0).all()


def test_mean_daily_averages_per_date():
    d = pd.date_range("2020-01-01", periods=3)
    a = pd.DataFrame({"rank_ic": [0.1, 0.2, np.nan]}, index=d)
    b = pd.DataFrame({"rank_ic": [0.3, 0.0, 0.5]}, index=d)
    assert mean_daily([a, b])["rank_ic"].tolist() == pytest.approx([0.2, 0.1, 0.5])
    assert mean_daily([a]) is a
