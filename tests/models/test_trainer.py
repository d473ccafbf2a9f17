"""The shared torch trainer: schedule, param groups, early stopping, best-weights restore,
checkpoints, resume, clipping, class weights, the auxiliary score loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from trendfactory.models.common.layers import TrendHead
from trendfactory.models.common.trainer import Classification, Trainer, _lr_lambda
from trendfactory.errors import TrendfactoryError
from trendfactory.params import TrainConfig

CPU = torch.device("cpu")


class TinyNet(nn.Module):
    def __init__(self, d: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Dropout(dropout))
        self.head = TrendHead(8)

    def forward(self, x):
        return self.head(self.body(x))


class Batches:
    """A re-iterable of (x, y, s) batches that reshuffles per epoch, like BatchGatherer."""

    def __init__(self, n: int = 512, batch: int = 64, seed: int = 0, signal: float = 2.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        logits = signal * torch.stack([-self.x[:, 0], torch.zeros(n), self.x[:, 0]], 1)
        self.y = torch.multinomial(torch.softmax(logits, 1), 1, generator=g)[:, 0]  # noise only when signal = 0
        self.s = torch.tanh(self.x[:, 0])
        self.batch, self.epoch = batch, 0

    def set_epoch(self, e: int) -> None:
        self.epoch = e

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch)

    def __iter__(self):
        order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(1000 + self.epoch))
        for i in range(0, len(order), self.batch):
            idx = order[i : i + self.batch]
            yield self.x[idx], self.y[idx], self.s[idx]


def cfg(**kw) -> TrainConfig:
    base = dict(lr=1e-2, batch_size=64, max_epochs=6, patience=10, warmup_epochs=0.0, device="cpu", resume=True)
    return TrainConfig(**{**base, **kw})


def weights(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.state_dict().values()]


def test_warmup_then_cosine_and_plateau_schedules():
    f = _lr_lambda(cfg(warmup_epochs=1.0, max_epochs=4), steps_per_epoch=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)  # linear warm-up over 10 steps
    assert f(10) == pytest.approx(1.0) and f(25) == pytest.approx(0.5) and f(40) == pytest.approx(0.0, abs=1e-12)
    g = _lr_lambda(cfg(warmup_epochs=0.5, max_epochs=4, scheduler="plateau"), steps_per_epoch=10)
    assert g(0) == pytest.approx(0.2) and g(5) == g(39) == 1.0  # plateau: flat after warm-up


def test_param_group_multipliers_scale_the_base_lr():
    net = TinyNet()
    groups = [{"params": list(net.body.parameters()), "lr_mult": 0.5}, {"params": list(net.head.parameters()), "lr_mult": 1.0}]
    seen = []
    t = Trainer(cfg(max_epochs=1, scheduler="plateau", lr=0.02), seed=0, device=CPU, progress=False)
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append([g["lr"] for g in self.param_groups])
        return orig(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        t.fit(net, Batches(), Batches(seed=1), groups)
    finally:
        torch.optim.AdamW.step = orig
    assert seen[0] == pytest.approx([0.01, 0.02])


def test_early_stopping_and_best_weights_are_restored():
    # pure noise: val loss stops improving quickly; patience 1 ends the run early
    t = Trainer(cfg(max_epochs=30, patience=1, lr=0.05), seed=0, device=CPU, progress=False)
    net = TinyNet()
    val = Batches(seed=1, signal=0.0)
    res = t.fit(net, Batches(signal=0.0), val)
    assert res.epochs < 30 and res.epochs == res.best_epoch + 2  # stopped one epoch after the best
    assert t.evaluate(net, val)["val/loss"] == pytest.approx(res.best_monitored)  # the restored weights are the best epoch's
    assert res.history["val/loss"][res.best_epoch] == pytest.approx(min(res.history["val/loss"]))
    # what DVCLive gets: every epoch's record but the throughput, which differs from run to run
    curves = res.curves()
    assert {"train_loss", "val_loss", "val_macro_f1", "lr"} <= set(curves) and "samples_per_second" not in curves
    assert all(len(v) == res.epochs for v in curves.values())


def test_learns_a_planted_signal_deterministically():
    a, b = TinyNet(), TinyNet()
    b.load_state_dict(a.state_dict())
    r1 = Trainer(cfg(), seed=3, device=CPU, progress=False).fit(a, Batches(), Batches(seed=1))
    r2 = Trainer(cfg(), seed=3, device=CPU, progress=False).fit(b, Batches(), Batches(seed=1))
    assert r1.best_monitored < np.log(3) - 0.1  # well below chance log loss
    # the same run twice: every logged curve but the throughput (a timing)
    assert {k: v for k, v in r2.history.items() if k != "samples_per_second"} == {k: v for k, v in r1.history.items() if k != "samples_per_second"}
    assert r2.best_epoch == r1.best_epoch
    assert all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))


def test_keeps_the_best_k_checkpoints(tmp_path):
    t = Trainer(cfg(max_epochs=6, keep_best=2), seed=0, device=CPU, checkpoint_dir=tmp_path, run_id="r", progress=False)
    t.fit(TinyNet(), Batches(), Batches(seed=1))
    assert len(list(tmp_path.glob("best-*.pt"))) <= 2 and (tmp_path / "last.pt").is_file()


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path):
    net0 = TinyNet(dropout=0.2)  # dropout: the RNG state must survive the interruption too
    straight = copy.deepcopy(net0)
    Trainer(cfg(max_epochs=4), seed=5, device=CPU, progress=False).fit(straight, Batches(), Batches(seed=1))

    def crash(metrics, calls=[]):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # during epoch 3's bookkeeping: last.pt holds epoch 2

    first = copy.deepcopy(net0)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg(max_epochs=4), seed=5, device=CPU, on_epoch=crash, checkpoint_dir=tmp_path, run_id="r", progress=False).fit(first, Batches(), Batches(seed=1))
    resumed = copy.deepcopy(net0)
    res = Trainer(cfg(max_epochs=4), seed=5, device=CPU, checkpoint_dir=tmp_path, run_id="r", progress=False).fit(resumed, Batches(), Batches(seed=1))
    assert res.epochs == 4 and len(res.history["val/loss"]) == 4
    assert all(torch.allclose(x, y) for x, y in zip(weights(straight), weights(resumed)))
    # another configuration never resumes from it
    other = Trainer(cfg(max_epochs=4), seed=5, device=CPU, checkpoint_dir=tmp_path, run_id="other", progress=False)
    assert other.fit(copy.deepcopy(net0), Batches(), Batches(seed=1)).epochs == 4


def _reference_epoch(net: nn.Module, c: TrainConfig) -> None:
    """One epoch of the plainest loop with ``clip_grad_norm_``, the trainer's optimizer and schedule."""
    opt = torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    batches = Batches()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(c, len(batches)))
    net.train()
    for x, y, _ in batches:
        loss = nn.functional.cross_entropy(net(x)[0][:, 0], y)
        opt.zero_grad()
        loss.backward()
        if c.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(net.parameters(), c.max_grad_norm)
        opt.step()
        sched.step()


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("max_grad_norm", [0.05, 0.0])
def test_gradients_are_clipped_like_clip_grad_norm(max_grad_norm, fused, monkeypatch):
    if not fused:  # a torch without fused AdamW: clip_grad_norm_ instead of clipping in the step
        from trendfactory.models.common import trainer as trainer_mod

        monkeypatch.setattr(trainer_mod, "_adamw", lambda g, lr, wd: torch.optim.AdamW(g, lr=lr, weight_decay=wd, foreach=True))
    c = cfg(max_epochs=1, max_grad_norm=max_grad_norm)
    torch.manual_seed(0)
    net0 = TinyNet()
    ours, ref = copy.deepcopy(net0), copy.deepcopy(net0)
    Trainer(c, seed=0, device=CPU, progress=False).fit(ours, Batches(), Batches(seed=1))
    _reference_epoch(ref, c)
    for a, b in zip(weights(ours), weights(ref)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if max_grad_norm:  # and the clip mattered: unclipped training ends elsewhere
        free = copy.deepcopy(net0)
        _reference_epoch(free, cfg(max_epochs=1, max_grad_norm=0.0))
        assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(weights(ours), weights(free)))


def test_class_weights_and_auxiliary_score_enter_the_loss():
    net = TinyNet()
    x, y, s = next(iter(Batches()))
    t = Trainer(cfg(), seed=0, device=CPU)
    with torch.no_grad():
        plain = Classification().loss(t, net, (x, y, s))
        weighted = Classification(class_weight=torch.tensor([5.0, 1.0, 1.0])).loss(t, net, (x, y, s))
        aux = Classification(aux_weight=2.0).loss(t, net, (x, y, s))
        _, score = net(x)
        score = score[:, 0]  # [B, 1] -> [B]: the one head
    assert not torch.isclose(plain, weighted)
    assert float(aux) == pytest.approx(float(plain + 2.0 * nn.functional.mse_loss(score, s)), rel=1e-6)


def test_aux_weight_makes_the_predicted_score_the_score_head(tmp_path_factory):
    from tests.models.test_conformance import FAST_TRAIN
    from tests.pipeline_helpers import build_stores, tiny_params
    from trendfactory.models import Samples, create

    root = build_stores(tmp_path_factory.mktemp("aux"), tiny_params())
    tr, va = Samples.open(root, 5, 0, "train"), Samples.open(root, 5, 0, "val")
    m = create("mlp", {"hidden": [16]}, horizon=5, train=TrainConfig(**{**FAST_TRAIN.__dict__, "aux_weight": 1.0})).fit(tr, va)
    p = m.predict(va)
    assert not np.allclose(p.score, p.proba[:, 2] - p.proba[:, 0])
    plain = create("mlp", {"hidden": [16]}, horizon=5, train=FAST_TRAIN).fit(tr, va).predict(va)
    np.testing.assert_allclose(plain.score, plain.proba[:, 2] - plain.proba[:, 0], atol=1e-12)


def test_a_diverged_fit_stops_with_one_line_instead_of_saving_nan_weights(tmp_path):
    # lr 1e30: every AdamW step moves each weight by ~1e30, so the losses overflow at once
    t = Trainer(cfg(lr=1e30, max_grad_norm=0.0), seed=0, device=CPU, progress=False, name="tiny", checkpoint_dir=tmp_path)
    with pytest.raises(TrendfactoryError, match=r"^tiny: the (train|validation) loss is (nan|inf) after epoch 1 \(the weights diverged\); lower train\.lr \(now 1e\+30\)"):
        t.fit(TinyNet(), Batches(), Batches(seed=1))


def test_precision_auto_is_the_networks_own_choice_on_cuda_and_fp32_on_the_cpu(monkeypatch):
    """train.precision: auto trains in what the network declares (gpu_precision: tf32 for most,
    bf16 for Time-LLM, fp32 for TimesFM) on CUDA; every setting trains in fp32 on the CPU."""
    from trendfactory.models import get_model_class, list_models
    from trendfactory.models.common.trainer import Precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for setting in ("auto", "fp32", "tf32", "bf16", "fp16"):
        assert Precision.resolve(setting, cpu, "bf16") == Precision(None, False, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert Precision.resolve("auto", cuda) == Precision(None, False, True)  # tf32 by default
    assert Precision.resolve("auto", cuda, "bf16") == Precision(torch.bfloat16, False)
    assert Precision.resolve("auto", cuda, "fp32") == Precision(None, False, False)
    assert Precision.resolve("fp32", cuda, "bf16") == Precision(None, False, False)  # a setting beats the network's choice
    assert Precision.resolve("fp16", cuda) == Precision(torch.float16, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert Precision.resolve("bf16", cuda) == Precision(torch.float16, True)  # no bf16: fp16 with a grad scaler
    choices = {n: get_model_class(n).gpu_precision for n in list_models() if get_model_class(n).uses_trainer}
    assert set(choices.values()) <= {"tf32", "bf16", "fp32"}
    assert choices["pretrained:time_llm"] == "bf16" and choices["pretrained:timesfm"] == "fp32" and choices["neural:mlp"] == "tf32"
