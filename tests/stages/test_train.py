"""The train stage's fits: one per fold for a deterministic model, one per fold and seed for a
stochastic one, and the same numbers whether the fits run one after another in the stage's
process or side by side as tasks on a local Ray."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from tests.pipeline_helpers import build_stores, tiny_params
from trendfactory.models import TrendModel
from trendfactory.stages.train import main_body


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_stage")
    params = tiny_params(
        n_symbols=4,
        n_bars=360,
        horizons=(5,),
        models={"mlp": {"hidden": [8]}, "xgboost": {"n_estimators": 15, "n_jobs": 1}, "logistic": {"max_iter": 50}},
        train={"max_epochs": 2, "batch_size": 128},
        evaluate={"seeds": 2},
    )
    build_stores(root, params)
    return root, params


def _train(root, monkeypatch, params, model: str, horizon: int | None = 5) -> dict[str, pd.DataFrame]:
    monkeypatch.chdir(root)
    main_body(params, argparse.Namespace(model=model, horizon=horizon))
    item = model if model == "mlp" else f"{model}-h{horizon}"
    return {r: pd.read_parquet(root / "data/predictions" / item / f"{r}_h5.parquet") for r in ("val", "test")}


def test_a_deterministic_model_is_fitted_once_per_fold(project, monkeypatch):
    root, params = project
    preds = _train(root, monkeypatch, params, "logistic")
    assert sorted(p.name for p in (root / "models/logistic-h5/fold_00").iterdir()) == ["seed_00"]
    assert set(preds["test"]["seed"]) == {0}


def test_a_stochastic_model_is_fitted_with_every_seed(project, monkeypatch):
    root, params = project
    preds = _train(root, monkeypatch, params, "xgboost")
    fits = root / "models/xgboost-h5/fold_00"
    assert sorted(p.name for p in fits.iterdir()) == ["seed_00", "seed_01"]
    assert [TrendModel.load(fits / s).seed for s in ("seed_00", "seed_01")] == [params.seed, params.seed + 1]
    test = preds["test"]
    assert set(test["seed"]) == {0, 1}
    a, b = (test[test["seed"] == s].reset_index(drop=True) for s in (0, 1))
    pd.testing.assert_frame_equal(a[["symbol", "datetime", "label"]], b[["symbol", "datetime", "label"]])  # same rows
    assert not np.allclose(a["score"], b["score"])  # subsampling with another seed: another model


@pytest.mark.parametrize("model, item_horizon", [("mlp", None), ("xgboost", 5), ("logistic", 5)])
def test_fits_on_a_local_ray_give_the_same_numbers(project, monkeypatch, model, item_horizon):
    """Sequential (parallel.cpus 1) and fanned out on a local Ray of 2 CPUs (one-thread fits: a
    network, XGBoost with n_jobs 1, and a BLAS-bound logistic regression, whose solver rounds
    differently on two BLAS threads than on one): the same predictions, bit for bit."""
    import dataclasses

    root, params = project
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    alone = _train(root, monkeypatch, dataclasses.replace(params, parallel=dataclasses.replace(params.parallel, cpus=1)), model, item_horizon)
    fanned = _train(root, monkeypatch, dataclasses.replace(params, parallel=dataclasses.replace(params.parallel, cpus=2)), model, item_horizon)
    for role in ("val", "test"):
        assert set(fanned[role]["seed"]) == ({0} if model == "logistic" else {0, 1})
        pd.testing.assert_frame_equal(alone[role], fanned[role])
