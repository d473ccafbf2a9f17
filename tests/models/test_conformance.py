"""Conformance: every registered model follows the contract on tiny data (runs over the
registry automatically, so a new model is tested the moment it registers)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.models.tiny_checkpoints import tiny_gpt2, tiny_timesfm
from trendfactory.errors import TrendfactoryError
from trendfactory.models import NotFittedError, Samples, TrendModel, create, list_models
from trendfactory.models.base import FitContext
from trendfactory.models.registry import get_model_class, model_info
from trendfactory.params import TrainConfig

# Small and fast settings per model; everything else is its params.yaml default.
FAST = {
    "random_forest": {"n_estimators": 20, "min_samples_leaf": 20},
    "svm": {"n_components": 50},
    "xgboost": {"n_estimators": 40},
    "lightgbm": {"n_estimators": 40, "min_child_samples": 20},
    "catboost": {"iterations": 40, "depth": 4},
    "mlp": {"hidden": [32]},
    "lstm": {"hidden": 16},
    "gru": {"hidden": 16},
    "tcn": {"channels": 8, "dilations": [1, 2]},
    "transformer": {"d_model": 16, "heads": 2, "layers": 1, "ff": 32, "patch_len": 4},
    "nhits": {"hidden": 32, "pool_sizes": [4, 1]},
    "hybrid": {"conv_channels": 8, "lstm_hidden": 16, "heads": 2, "head_hidden": 16},
    # a tiny GPT-2 the tests write (tests/models/tiny_checkpoints.py), loaded like a real checkpoint
    # (short prompts and one series: the tokens through the language model are its cost)
    "time_llm": lambda: {"backbone": str(tiny_gpt2()), "llm_layers": 2, "series": 1, "d_model": 8, "heads": 2, "d_ff": 16, "prototypes": 64, "prompt_tokens": 16},
    # a tiny TimesFM 2.5 the tests write in the official release's format, loaded like the real one
    "timesfm": lambda: {"checkpoint": str(tiny_timesfm()), "hidden": 16},
}
FAST_TRAIN = TrainConfig(max_epochs=3, batch_size=256, lr=3e-3, patience=2, warmup_epochs=0.0, device="cpu")
H = 5


def fast_config(name: str) -> dict | None:
    """Small settings for tests: FAST, or the ``tiny_config`` a model file declares beside it."""
    from trendfactory.models import get_model_class

    fast = FAST.get(name.split(":")[-1], getattr(get_model_class(name), "tiny_config", None))
    return fast() if callable(fast) else fast


def fast_model(name: str, horizon: int = H, seed: int = 3, train: TrainConfig = FAST_TRAIN):
    """A registered model with its FAST settings (and the fast trainer for neural ones)."""
    return create(name, fast_config(name), horizon=horizon, seed=seed, train=train)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from tests.pipeline_helpers import build_stores, tiny_params

    return build_stores(tmp_path_factory.mktemp("conformance"), tiny_params())


@pytest.fixture(scope="module")
def data(stores):
    return {s: Samples.open(stores, H, 0, s) for s in ("train", "val", "test")}


@pytest.fixture(scope="module", params=list_models())
def fitted(request, data):
    model = fast_model(request.param)
    assert model.fit(data["train"], data["val"]) is model
    return model


def test_predictions_follow_the_contract(fitted, data):
    p = fitted.predict(data["test"])
    n = len(data["test"])
    assert p.pred.shape == (n,) and p.proba.shape == (n, 3) and p.score.shape == (n,)
    assert set(np.unique(p.pred)) <= {-1, 0, 1}
    assert np.all(p.proba >= 0) and np.allclose(p.proba.sum(axis=1), 1.0)
    assert np.all(np.isfinite(p.score)) and np.all(np.abs(p.score) <= 1.0)
    frame = p.to_frame(data["test"].keys(), H)
    assert list(frame.columns) == ["symbol", "datetime", "horizon", "pred", "p_down", "p_flat", "p_up", "score"]


def test_save_load_round_trip_is_identical(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = TrendModel.load(tmp_path / "m")
    assert type(loaded) is type(fitted) and loaded.config == fitted.config and loaded.horizon == H
    a, b = fitted.predict(data["test"]), loaded.predict(data["test"])
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(a.proba, b.proba)
    np.testing.assert_array_equal(a.score, b.score)
    # nothing unsafe on disk: every file is JSON, text or a library's own model format
    assert not [f for f in (tmp_path / "m").iterdir() if f.suffix in (".pkl", ".pickle", ".joblib")]


def test_same_seed_same_predictions_and_same_bytes(fitted, data, tmp_path):
    again = fast_model(fitted.name).fit(data["train"], data["val"])
    np.testing.assert_array_equal(again.predict(data["test"]).proba, fitted.predict(data["test"]).proba)
    # DVC hashes the saved model: a refit with the same seed must write the same bytes, or every
    # rerun of a train stage rewrites dvc.lock (timings, timestamps, object ids must stay out)
    fitted.save(tmp_path / "a")
    again.save(tmp_path / "b")
    files = sorted(f.name for f in (tmp_path / "a").iterdir())
    assert files == sorted(f.name for f in (tmp_path / "b").iterdir())
    differ = [f for f in files if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()]
    assert not differ, f"{fitted.name}: saved files differ between two identical fits: {differ}"


@pytest.mark.parametrize("name", [n for n in list_models() if get_model_class(n).uses_trainer])
def test_early_stopping_on_val_rank_ic_keeps_the_best_rank_ic_epoch(name, data):
    """``train.monitor: rank_ic`` works for every model the shared trainer fits (it stopped the
    dual tower's stage: its validation had no Rank IC) and keeps the epoch whose validation
    Rank IC is highest."""
    seen = []
    train = dataclasses.replace(FAST_TRAIN, monitor="rank_ic", max_epochs=2, patience=2)
    model = fast_model(name, train=train)
    model.fit(data["train"], data["val"], FitContext(on_epoch=seen.append))
    ric = [m["val/rank_ic"] for m in seen]
    assert len(ric) == 2 and all(np.isfinite(ric)), f"{name}: val Rank IC per epoch {ric}"
    best = 1 if ric[1] > ric[0] + train.min_delta else 0  # the second epoch counts only if it improves by min_delta
    assert model.best_iteration_ == best, f"{name}: kept epoch {model.best_iteration_ + 1}, val Rank IC by epoch {ric}"


@pytest.mark.parametrize("name", list_models())
def test_predict_and_save_before_fit_raise(name, data, tmp_path):
    model = create(name, horizon=H)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(data["test"])
    with pytest.raises(NotFittedError, match="not fitted"):
        model.save(tmp_path)


@pytest.mark.parametrize("name", list_models())
def test_constructor_stores_params_only(name):
    model = create(name, horizon=H)
    assert not model.is_fitted
    assert not [k for k in vars(model) if k.endswith("_")], "fitted state set by the constructor"


def test_fit_checks_its_inputs(data):
    model = create("majority", horizon=20)
    with pytest.raises(ValueError, match="horizon 5"):
        model.fit(data["train"], data["val"])
    unlabelled = Samples(data["val"].split, H, labelled=False)
    with pytest.raises(ValueError, match="no labels"):
        create("majority", horizon=H).fit(data["train"], unlabelled)
    with pytest.raises(TrendfactoryError, match="no train samples"):
        create("majority", horizon=H).fit(data["train"].subset(np.array([], dtype=np.int64)), data["val"])


def test_every_model_is_listed_with_flags():
    infos = {i.full_name: i for i in model_info()}
    assert set(infos) == set(list_models())
    assert infos["boosting:xgboost"].can_use_gpu and not infos["baseline:majority"].can_use_gpu
    assert all(not i.needs_sequences for i in infos.values() if i.family in ("baseline", "classical", "boosting"))
    assert infos["neural:lstm"].needs_sequences and not infos["neural:mlp"].needs_sequences
