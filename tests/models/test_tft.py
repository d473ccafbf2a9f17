"""Temporal Fusion Transformer: its variable-selection weights are its feature importance (every
feature, summing to 1, kept through save/load), the folded selection equals the paper's
flattened-embedding form, and the attention is causal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models.test_conformance import H, fast_model
from trendfactory.models import Samples, TrendModel, create
from trendfactory.models.zoo.tft import fold


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from tests.pipeline_helpers import build_stores, tiny_params

    return build_stores(tmp_path_factory.mktemp("tft"), tiny_params())


@pytest.fixture(scope="module")
def data(stores):
    return {s: Samples.open(stores, H, 0, s) for s in ("train", "val", "test")}


@pytest.fixture(scope="module")
def fitted(data):
    return fast_model("tft").fit(data["train"], data["val"])


def test_importance_covers_every_feature_and_sums_to_one(fitted, data):
    imp = fitted.feature_importance()
    assert imp is not None
    assert list(imp) == list(data["train"].feature_names)
    values = np.array(list(imp.values()))
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert values.sum() == pytest.approx(1.0, abs=1e-9)


def test_importance_survives_save_and_load(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = TrendModel.load(tmp_path / "m")
    assert loaded.feature_importance() == fitted.feature_importance()  # exact: JSON floats round-trip
    assert list(loaded.feature_importance()) == list(fitted.feature_importance())


def test_unfitted_model_has_no_importance():
    assert create("tft").feature_importance() is None


def _net(config: dict, F: int = 5, L: int = 12):
    model = create("tft", config)
    model.shape_ = (F, L)
    torch.manual_seed(0)
    return model.network(1).eval()


def test_folded_selection_equals_the_flattened_embedding_grn():
    net = _net({"hidden": 8, "heads": 2})
    sel = net.selection
    x = torch.randn(3, 12, 5)
    emb = x.unsqueeze(-1) * sel.weight + sel.bias  # [B, L, F, d]: one Linear(1, d) per feature
    flat = emb.flatten(2)  # [B, L, F*d]
    with torch.no_grad():
        expected = torch.softmax(sel.select(flat), dim=-1)  # the paper's GRN over the flattened inputs
        got = sel.weights(x)
        combined, v = sel(x)
        m, c = fold(sel.select.fc1, sel.weight, sel.bias)
    torch.testing.assert_close(x @ m + c, sel.select.fc1(flat), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v.sum(-1), torch.ones(3, 12))
    torch.testing.assert_close(combined, (v.unsqueeze(-1) * emb).sum(2), atol=1e-5, rtol=1e-5)


def test_feature_grn_variant_runs_and_has_gradients():
    net = _net({"hidden": 8, "heads": 2, "feature_grn": True})
    x = torch.randn(4, 12, 5)
    logits, score = net(x)
    assert logits.shape == (4, 1, 3) and score.shape == (4, 1)
    logits.sum().backward()
    assert net.selection.feature_grn.w1.grad is not None and net.selection.feature_grn.w1.grad.abs().sum() > 0


def test_attention_is_causal():
    net = _net({"hidden": 8, "heads": 2})
    theta = torch.randn(2, 12, 8)
    later = theta.clone()
    later[:, 7:] = torch.randn(2, 5, 8) * 3
    with torch.no_grad():
        a, pattern = net.attn(theta)
        b, _ = net.attn(later)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert torch.all(pattern.triu(1) == 0)
    assert not torch.allclose(a[:, 7:], b[:, 7:])
