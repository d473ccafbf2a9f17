"""TimesFM on a tiny TimesFM 2.5 the test writes in the official release's format
(tests/models/tiny_checkpoints.py), loaded through the same path as the real checkpoint: the
official network with the checkpoint's sizes, the official package's forecast reproduced, the
zero-shot mapping against the labels' barrier, the frozen backbone kept out of the saved fit, and
one line when a checkpoint cannot be had (conformance, canary, network and export tests cover the
rest)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tests.models.test_conformance import data, fast_config, fast_model, stores  # noqa: F401  (fixtures)
from tests.models.tiny_checkpoints import tiny_timesfm
from trendfactory.errors import TrendfactoryError
from trendfactory.models import Samples, TrendModel, create
from trendfactory.models.zoo.timesfm import SeriesInputs, TimesFMNet, _definition, ewm_std, load_timesfm


@pytest.fixture(scope="module")
def fitted(data):  # noqa: F811
    return fast_model("timesfm").fit(data["train"], data["val"])


def test_the_release_sizes_are_read_from_its_tensors():
    """The sizes come from the weights' shapes: the 200M release's give the package's own definition."""
    from timesfm.timesfm_2p5.timesfm_2p5_base import TimesFM_2p5_200M_Definition
    from timesfm.timesfm_2p5.timesfm_2p5_torch import TimesFM_2p5_200M_torch_module

    with torch.device("meta"):  # shapes only: no 200M parameters are allocated
        release = TimesFM_2p5_200M_torch_module().state_dict()
    assert _definition(release, "release") == TimesFM_2p5_200M_Definition()
    tiny = load_timesfm(str(tiny_timesfm()))
    assert (tiny.x, tiny.md, tiny.h, tiny.p, tiny.o) == (2, 32, 2, 32, 128)


def test_the_forecast_is_the_official_packages(fitted):
    """The batched forecast equals the package's own TimesFM_2p5_200M_torch.forecast (normalised
    inputs, continuous quantile head, flip invariance) on series of a whole context."""
    from timesfm import ForecastConfig
    from timesfm.timesfm_2p5.timesfm_2p5_torch import TimesFM_2p5_200M_torch

    backbone = fitted.net_.backbone
    official = TimesFM_2p5_200M_torch.__new__(TimesFM_2p5_200M_torch)  # the wrapper without building the 200M network
    official.model, official.torch_compile = backbone, False
    backbone.device, backbone.device_count = torch.device("cpu"), 1
    cfg = ForecastConfig(max_context=64, max_horizon=128, normalize_inputs=True, use_continuous_quantile_head=True, force_flip_invariance=True, infer_is_positive=False)
    official.compile(cfg)
    series = torch.cumsum(torch.randn(5, 64, generator=torch.Generator().manual_seed(0)) * 0.02, dim=1)
    steps = fitted.net_.steps
    _, theirs = official.forecast(horizon=steps, inputs=[s.numpy().astype(np.float64) for s in series])  # [5, S, 10]
    ours, embedding = fitted.net_.forecast(series)
    theirs = np.concatenate([theirs[..., :1], np.sort(theirs[..., 1:], axis=-1)], axis=-1)  # ours removes quantile crossings by sorting
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-4, atol=1e-5)
    assert embedding.shape == (5, 32)


def test_the_zero_shot_mapping_follows_the_barrier():
    """Median 0 and a spread that puts 10 % beyond each barrier: touching each is 20 %, flat 60 %;
    a median at the upper barrier: up is certain by the doubling (scaled with down to sum 1)."""
    inputs = SeriesInputs(column=0, mean=0.0, std=1.0, entry_lag=1, barrier_k=0.75, vol_span=50)
    cfg = create("timesfm", {"checkpoint": str(tiny_timesfm()), "finetune": "none"}).config
    net = TimesFMNet(load_timesfm(cfg.checkpoint), [5], inputs, cfg).eval()
    r = torch.tensor([[0.01, -0.01] * 15])  # sigma_t = 0.01 (bias-corrected EWM of +-1 %)
    sigma = float(ewm_std(r, 50))
    barrier = 0.75 * sigma * math.sqrt(5)

    def fake(median: float):
        def forecast(series):
            q = torch.zeros(1, net.steps, 10)
            spread = barrier / 1.2815515655446004  # P(end > barrier) = 10 % when the median is 0
            z = torch.tensor([0.0, -1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])
            q[0, net.inputs.entry_lag + 5 - 1] = median + z * spread  # the exit bar; the entry bar's median is 0
            return q, torch.zeros(1, 32)

        return forecast

    net.forecast = fake(0.0)
    logits, score = net(r[:, :, None])
    np.testing.assert_allclose(torch.softmax(logits[0, 0], 0).numpy(), [0.2, 0.6, 0.2], atol=2e-4)
    assert abs(float(score[0, 0])) < 1e-6
    net.forecast = fake(barrier)
    p = torch.softmax(net(r[:, :, None])[0][0, 0], 0).numpy()
    assert p[2] > 0.9 and p[1] < 1e-3  # up doubled to 1, down small: scaled to sum 1, nothing left for flat


def test_ewm_std_is_the_labels_sigma():
    r = np.random.default_rng(0).normal(0, 0.02, size=(3, 40))
    expected = [pd.Series(row).ewm(span=50).std().iloc[-1] for row in r]
    np.testing.assert_allclose(ewm_std(torch.from_numpy(r), 50).numpy(), expected, rtol=1e-10)


def test_the_backbone_comes_from_the_checkpoint_and_never_trains(fitted):
    on_disk = load_file(str(tiny_timesfm() / "model.safetensors"))
    backbone = fitted.net_.backbone.state_dict()
    assert backbone.keys() == on_disk.keys() and all(torch.equal(backbone[k], on_disk[k]) for k in on_disk)
    assert not any(p.requires_grad for p in fitted.net_.backbone.parameters())
    assert fitted.net_.head.proj.weight.abs().sum() > 0  # the head trained away from its zero start


def test_the_saved_fit_holds_the_head_only(fitted, data, tmp_path):  # noqa: F811
    fitted.save(tmp_path / "m")
    weights = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    assert {k.split(".")[0] for k in weights} == {"norm", "body", "head"}
    loaded = TrendModel.load(tmp_path / "m")  # rebuilds the backbone from models.timesfm.checkpoint
    assert loaded.net_.inputs == fitted.net_.inputs and loaded.net_.inputs.barrier_k == 0.75
    np.testing.assert_array_equal(loaded.predict(data["test"]).proba, fitted.predict(data["test"]).proba)


def test_zero_shot_trains_nothing_and_reads_the_barrier_from_the_store(data):  # noqa: F811
    a = create("timesfm", {"checkpoint": str(tiny_timesfm()), "finetune": "none"}, seed=1).fit(data["train"], data["val"])
    b = create("timesfm", {"checkpoint": str(tiny_timesfm()), "finetune": "none"}, seed=2).fit(data["train"], data["val"])
    assert a.best_iteration_ == 0 and a.net_.zero_shot
    np.testing.assert_array_equal(a.predict(data["test"]).proba, b.predict(data["test"]).proba)  # no seed enters
    label = data["train"].split.meta["label"]
    assert (a.inputs_.entry_lag, a.inputs_.barrier_k, a.inputs_.vol_span) == (label["entry_lag"], label["barrier_k"], label["vol_span"])
    assert a.inputs_.column == data["train"].feature_names.index("stk_ret_1")


def test_a_checkpoint_that_cannot_be_had_stops_with_one_line(data, stores, tmp_path):  # noqa: F811
    missing = create("timesfm", {"checkpoint": str(tmp_path)})
    with pytest.raises(TrendfactoryError, match=r"^models\.timesfm\.checkpoint: '.*' holds no model\.safetensors"):
        missing.fit(data["train"], data["val"])
    offline = create("timesfm", {"checkpoint": "google/timesfm-2.5-200m-pytorch"})  # HF_HUB_OFFLINE (tests/conftest.py): no download
    with pytest.raises(TrendfactoryError, match=r"^models\.timesfm\.checkpoint: cannot load 'google/timesfm-2\.5-200m-pytorch' .*huggingface-cli download") as err:
        offline.fit(data["train"], data["val"])
    assert "\n" not in str(err.value)
    old = Samples.open(stores, 5, 0, "train")
    del old.split.meta["label"]  # a store written before it recorded its labels
    with pytest.raises(TrendfactoryError, match=r"meta\.json does not say how its labels were made .*rerun the window stage"):
        fast_model("timesfm").fit(old, data["val"])


def test_a_fit_forecasts_each_window_once(data, monkeypatch):  # noqa: F811
    """The frozen forecast is cached for the fit's epochs and validation passes (and dropped after):
    the same fit as without the cache, at a fraction of the forecasts."""
    forecasts = []
    frozen = TimesFMNet.frozen
    monkeypatch.setattr(TimesFMNet, "frozen", lambda self, r: forecasts.append(len(r)) or frozen(self, r))
    cached = fast_model("timesfm").fit(data["train"], data["val"])
    n_cached = sum(forecasts)
    forecasts.clear()
    config = {**fast_config("timesfm"), "cache_windows": 0}
    uncached = create("timesfm", config, horizon=5, seed=3, train=fast_model("timesfm").train_config).fit(data["train"], data["val"])
    assert n_cached <= len(data["train"]) + len(data["val"]) < sum(forecasts)
    assert cached.net_.cache is None and uncached.net_.cache is None
    np.testing.assert_allclose(cached.predict(data["test"]).proba, uncached.predict(data["test"]).proba, atol=1e-5)
