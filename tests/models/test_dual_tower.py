"""The dual tower: one head per horizon, heads that really see the stock tower, the multi-task
loss, per-component learning rates, embeddings, the joint/per-horizon switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models.test_conformance import FAST_TRAIN
from tests.pipeline_helpers import build_stores, tiny_params
from trendfactory.evaluation.importance import context_projection
from trendfactory.models import Samples, TrendModel, create
from trendfactory.models.common.trainer import Trainer
from trendfactory.models.zoo.dual_tower import MultiHorizon

HORIZONS = (5, 20)
SMALL = {"context_hidden": [16], "context_embedding": 8, "stock_hidden": [32], "stock_embedding": 8, "head_hidden": 16}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return build_stores(tmp_path_factory.mktemp("dual"), tiny_params(horizons=HORIZONS, n_bars=600))


def _fit(stores, **cfg):
    tr, va = Samples.open(stores, 5, 0, "train"), Samples.open(stores, 5, 0, "val")
    return create("dual_tower", {**SMALL, **cfg}, horizon=5, seed=1, train=FAST_TRAIN).fit(tr, va)


@pytest.fixture(scope="module")
def joint(stores):
    return _fit(stores)


def test_one_network_with_a_head_per_horizon(joint, stores):
    assert joint.groups_ == [list(HORIZONS)] and len(joint.nets_) == 1 and len(joint.nets_[0].heads) == 2
    p5 = joint.predict(Samples.open(stores, 5, 0, "test"))
    p20 = joint.predict(Samples.open(stores, 20, 0, "test"))
    assert not np.allclose(p5.proba[: len(p20)], p20.proba[: len(p5)])  # each horizon reads its own head
    with pytest.raises(Exception, match="no head for horizon 3"):
        joint.head(3)


def test_per_horizon_networks_when_not_joint(stores):
    sep = _fit(stores, joint=False)
    assert sep.groups_ == [[5], [20]] and len(sep.nets_) == 2 and all(len(n.heads) == 1 for n in sep.nets_)


def test_heads_depend_on_the_stock_tower_only_when_they_see_it(joint, stores):
    x = torch.from_numpy(Samples.open(stores, 5, 0, "val").tabular(())[:64]).requires_grad_(True)
    net = joint.nets_[0]
    _, score, _, _ = net(x)
    score.sum().backward()
    stk = net.stk_idx.numpy()
    assert x.grad[:, stk].abs().sum() > 0  # heads_see: both -> the stock inputs move the scores

    ctx_only = _fit(stores, heads_see="context")
    x2 = x.detach().clone().requires_grad_(True)
    _, score2, _, _ = ctx_only.nets_[0](x2)
    score2.sum().backward()
    assert x2.grad[:, stk].abs().sum() == 0  # heads_see: context -> no path from the stock inputs
    # and so every symbol gets the same call on a date: nothing to rank
    test = Samples.open(stores, 5, 0, "test")
    frame = ctx_only.predict(test).to_frame(test.keys(), 5)
    assert frame.groupby("datetime")["score"].nunique().max() == 1
    frame = joint.predict(test).to_frame(test.keys(), 5)
    assert frame.groupby("datetime")["score"].nunique().max() > 1


def test_loss_is_the_sum_over_heads_plus_the_regulariser(joint, stores):
    net = joint.nets_[0].train()
    t = Trainer(FAST_TRAIN, seed=0, device=torch.device("cpu"))
    va = Samples.open(stores, 5, 0, "val")
    x = torch.from_numpy(va.tabular(())[:32])
    y = torch.randint(0, 3, (32, 2))
    s = torch.rand(32, 2) * 2 - 1
    torch.manual_seed(0)
    with torch.no_grad():
        net.eval()  # no dropout: the same forward each time
        base = MultiHorizon(1.0, 0.5, 0.0).loss(t, net, (x, y, s))
        reg = MultiHorizon(1.0, 0.5, 0.01).loss(t, net, (x, y, s))
        logits, score, c, p = net(x)
        expect = sum(((score[:, k] - s[:, k]) ** 2).mean() + 0.5 * torch.nn.functional.cross_entropy(logits[:, k], y[:, k]) for k in range(2))
        cos2 = (torch.nn.functional.cosine_similarity(c, p, dim=1) ** 2).mean()
        size = (c.pow(2).sum(1).mean() + p.pow(2).sum(1).mean()) / c.shape[1]
    assert float(base) == pytest.approx(float(expect), rel=1e-5)
    assert float(reg - base) == pytest.approx(0.01 * float(cos2 + size), rel=1e-4)


def test_component_learning_rates(joint):
    groups = joint.param_groups(joint.nets_[0])
    assert [g["lr_mult"] for g in groups] == [1.0, 0.5, 1.0]
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in joint.nets_[0].parameters())  # every parameter in exactly one group


def test_embeddings_and_their_projection(joint, stores):
    test = Samples.open(stores, 5, 0, "test")
    c, s = joint.embed(test)
    assert c.shape == (len(test), SMALL["context_embedding"]) and s.shape == (len(test), SMALL["stock_embedding"])
    points, regime, feature = context_projection(joint, test)
    assert points.shape == (test.keys()["datetime"].nunique(), 2) and feature.startswith("ctx_") and np.isfinite(regime).any()


def test_default_sizes_match_the_design():
    m = create("dual_tower", horizon=5)
    c = m.config
    assert (tuple(c.context_hidden), c.context_embedding, c.context_dropout) == ((128, 64), 32, 0.2)
    assert (tuple(c.stock_hidden), c.stock_embedding, c.stock_dropout) == ((256, 128), 64, 0.3)
    assert (c.alpha, c.beta, c.gamma) == (1.0, 0.5, 0.01) and (c.lr_context, c.lr_stock, c.lr_heads) == (1.0, 0.5, 1.0)


def test_saved_joint_model_serves_every_horizon(joint, stores, tmp_path):
    joint.save(tmp_path / "m")
    loaded = TrendModel.load(tmp_path / "m")
    for h in HORIZONS:
        s = Samples.open(stores, h, 0, "test")
        np.testing.assert_array_equal(loaded.predict(s).proba, joint.predict(s).proba)


@pytest.mark.parametrize("weighted", [False, True])
def test_vectorised_head_losses_equal_one_cross_entropy_per_head(joint, stores, weighted):
    net = joint.nets_[0].eval()
    t = Trainer(FAST_TRAIN, seed=0, device=torch.device("cpu"))
    x = torch.from_numpy(Samples.open(stores, 5, 0, "val").tabular(())[:40])
    y, s = torch.randint(0, 3, (40, 2)), torch.rand(40, 2) * 2 - 1
    cw = torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.7, 1.0]]) if weighted else None
    with torch.no_grad():
        _, ce, logits, _, _, _ = MultiHorizon(1.0, 0.5, 0.0, cw)._parts(t, net, (x, y, s))
        expect = [torch.nn.functional.cross_entropy(logits[:, k], y[:, k], weight=None if cw is None else cw[k]) for k in range(2)]
    np.testing.assert_allclose(ce.numpy(), torch.stack(expect).numpy(), rtol=1e-6)


def test_heads_compute_each_horizon_from_its_own_weights():
    from trendfactory.models.zoo.dual_tower import Heads

    torch.manual_seed(0)
    heads = Heads(6, 5, 3)
    z = torch.randn(7, 6)
    out = heads(z)  # [B, H, 4]
    for k in range(3):
        w1, b1 = heads.first.weight[k * 5 : (k + 1) * 5], heads.first.bias[k * 5 : (k + 1) * 5]
        expect = torch.relu(z @ w1.t() + b1) @ heads.second_weight[k] + heads.second_bias[k]
        torch.testing.assert_close(out[:, k], expect)
