"""Leakage canary: gradient boosting on the pipeline's features.

On a pure random walk nothing is predictable, so balanced accuracy on every walk-forward
fold's test block must sit at chance (1/3) within a band computed from the block's size; any
look-ahead in features, labels, purge, embargo or a fold's scaling shows up as accuracy above
that band. With a planted signal of known strength the same model must be clearly above chance
in every fold, so the canary can also fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from trendfactory.data.ingest import run_ingest
from trendfactory.features.build import build_features
from trendfactory.params import parse_params
from tests.pipeline_helpers import chance_band

H = 5


def featurize(signal_strength: float):
    params = parse_params(
        {
            "data": {
                "source": "synthetic",
                "start": None,
                "end": None,
                "synthetic": {"n_symbols": 30, "n_bars": 1500, "start": "2000-01-03", "signal_strength": signal_strength},
            },
            "label": {"horizons": [H]},
            "split": {"scheme": "walk_forward", "test_start": "2003-01-01", "fold": 1, "val_years": 1, "embargo": 10},
        }
    )
    raw = run_ingest(params.data, params.seed)
    result = build_features(raw.bars, raw.context, params)
    assert len(result.folds) == 3  # test blocks 2003, 2004, 2005
    return [result.fold_frames(k) for k in range(len(result.folds))], params


def fit_and_score(splits):
    lgb = pytest.importorskip("lightgbm")
    cols = [c for c in splits["train"].columns if c.startswith(("stk_", "ctx_"))]

    def xy(frame):
        frame = frame[frame[f"label_h{H}"].notna()]
        return frame[cols].to_numpy(np.float32), frame[f"label_h{H}"].astype(int).to_numpy()

    xtr, ytr = xy(splits["train"])
    xte, yte = xy(splits["test"])
    model = lgb.LGBMClassifier(
        n_estimators=100, learning_rate=0.05, num_leaves=15, min_child_samples=50, subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=0, verbose=-1, n_jobs=1
    )  # 1 job: no OpenMP contention with torch
    model.fit(xtr, ytr)
    return balanced_accuracy_score(yte, model.predict(xte)), yte


def test_random_walk_is_at_chance_in_every_fold():
    folds, params = featurize(0.0)
    for k, splits in enumerate(folds):
        ba, yte = fit_and_score(splits)
        band = chance_band(yte, overlap=H + params.label.entry_lag)
        assert abs(ba - 1 / 3) < band, f"fold {k}: balanced accuracy {ba:.4f} outside 1/3 +- {band:.4f} on a random walk: look-ahead?"


def test_planted_signal_is_found_in_every_fold():
    folds, params = featurize(1.0)
    for k, splits in enumerate(folds):
        ba, yte = fit_and_score(splits)
        band = chance_band(yte, overlap=H + params.label.entry_lag)
        assert ba > 1 / 3 + band, f"fold {k}: balanced accuracy {ba:.4f} not above chance band {1 / 3 + band:.4f} with a planted signal"
