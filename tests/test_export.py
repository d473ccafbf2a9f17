"""`trendfactory export`: every network exports (ONNX, or TorchScript where ONNX cannot express
it) and the exported file scores the test windows like the PyTorch model, to 1e-5; the batch
size stays free; tabular models are refused with a clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.models.test_conformance import fast_model
from trendfactory.errors import TrendfactoryError
from trendfactory.export import TOLERANCE, _run_onnx, _run_torchscript, export_fitted
from trendfactory.models import Samples, get_model_class, list_models

H = 5
NETWORKS = [n for n in list_models() if get_model_class(n).kind in ("network", "joint")]
# a network that neither ONNX nor traced TorchScript can express declares why (export_blocker)
EXPORTABLE = [n for n in NETWORKS if not getattr(get_model_class(n), "export_blocker", None)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.pipeline_helpers import build_stores, tiny_params

    stores = build_stores(tmp_path_factory.mktemp("export"), tiny_params())
    return {s: Samples.open(stores, H, 0, s) for s in ("train", "val", "test")}


@pytest.mark.parametrize("name", EXPORTABLE)
def test_exported_network_scores_like_pytorch(name, data, tmp_path):
    model = fast_model(name).fit(data["train"], data["val"])
    meta = export_fitted(model, data["test"], tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "export.json").read_text())
    assert saved["parity"]["max_abs_diff"] <= TOLERANCE and saved["input"]["feature_names"] == model.feature_names_
    assert (tmp_path / "out" / meta["file"]).is_file()
    # scored again here, on a batch size the export never saw (the first 37 rows)
    n = 37
    x = np.ascontiguousarray(model.scoring_inputs(data["test"], slice(0, n)), dtype=np.float32)
    run = _run_onnx if meta["format"] == "onnx" else _run_torchscript
    proba, score = run(tmp_path / "out" / meta["file"], x)
    want = model.predict(data["test"])
    np.testing.assert_allclose(proba, want.proba[:n], atol=TOLERANCE)
    np.testing.assert_allclose(score, want.score[:n], atol=TOLERANCE)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_networks_that_onnx_can_express_export_as_onnx(data, tmp_path):
    for name in ("mlp", "lstm", "gru", "tcn", "dual_tower"):
        model = fast_model(name).fit(data["train"], data["val"])
        assert export_fitted(model, data["test"], tmp_path / name)["format"] == "onnx", name


@pytest.mark.parametrize("name", [n for n in NETWORKS if n not in EXPORTABLE])
def test_a_network_that_cannot_be_exported_says_why(name, data, tmp_path):
    model = fast_model(name).fit(data["train"], data["val"])
    with pytest.raises(TrendfactoryError, match=rf"export: {model.name} cannot be exported: .+; score it with `trendfactory predict`"):
        export_fitted(model, data["test"], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_tabular_model_is_refused(data, tmp_path):
    model = fast_model("xgboost").fit(data["train"], data["val"])
    with pytest.raises(TrendfactoryError, match="export: xgboost is a tabular model, saved in its library's own format"):
        export_fitted(model, data["test"], tmp_path / "x")
    assert not (tmp_path / "x").exists()
