"""Leakage canary over the registry: on a pure random walk every model is at chance; with a
planted signal every model that can learn is above it (both belong in the suite).

The chain under test is the whole pipeline a model sees: featurize, purge/embargo, the
train-only scaler, windows, the model's own fit and predict.
"""

from __future__ import annotations

import pytest
from sklearn.metrics import balanced_accuracy_score

from tests.models.test_conformance import fast_model
from tests.pipeline_helpers import build_stores, chance_band, tiny_params
from trendfactory.models import Samples, list_models

H = 5


def _stores(tmp_path_factory, signal: float):
    params = tiny_params(n_symbols=24, n_bars=1300, signal=signal, horizons=(H,))
    root = build_stores(tmp_path_factory.mktemp(f"canary{signal}"), params)
    return {s: Samples.open(root, H, 0, s) for s in ("train", "val", "test")}


@pytest.fixture(scope="module")
def random_walk(tmp_path_factory):
    return _stores(tmp_path_factory, 0.0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _stores(tmp_path_factory, 1.0)


def _score(name: str, data) -> tuple[float, float]:
    model = fast_model(name, seed=0).fit(data["train"], data["val"])
    y = data["test"].labels()
    ba = balanced_accuracy_score(y, model.predict(data["test"]).pred)
    return ba, chance_band(y, overlap=H + 1)


@pytest.mark.parametrize("name", list_models())
def test_random_walk_is_at_chance(name, random_walk):
    ba, band = _score(name, random_walk)
    assert abs(ba - 1 / 3) < band, f"{name}: balanced accuracy {ba:.4f} outside 1/3 +- {band:.4f} on a random walk: look-ahead?"


@pytest.mark.parametrize("name", [n for n in list_models() if n != "baseline:majority"])
def test_planted_signal_is_found(name, planted):
    ba, band = _score(name, planted)
    assert ba > 1 / 3 + band, f"{name}: balanced accuracy {ba:.4f} not above the chance band {1 / 3 + band:.4f} with a planted signal"
