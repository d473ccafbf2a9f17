"""Every sequence network (kind ``network``, whole windows in): a window's output depends on that
window alone, uses its latest bar, and the network can fit a tiny set (runs over the registry,
so a new network is tested the moment it registers)."""

from __future__ import annotations

import pytest
import torch

from tests.models.test_conformance import fast_model
from trendfactory.models import get_model_class, list_models

F, T = 7, 24  # features, bars per window (small, but long enough for every default patch / pool)
SEQUENCE_NETWORKS = [n for n in list_models() if get_model_class(n).kind == "network" and get_model_class(n).needs_sequences]


def build(name: str, heads: int = 2) -> torch.nn.Module:
    model = fast_model(name)
    model.shape_ = (F, T)
    torch.manual_seed(0)
    return model.network(heads)


@pytest.mark.parametrize("name", SEQUENCE_NETWORKS)
def test_a_windows_output_ignores_the_rest_of_the_batch(name):
    """No information crosses between samples (batch statistics, attention over the batch):
    window 0's output is the same whatever the other windows hold."""
    net = build(name).eval()
    x = torch.randn(12, T, F)
    other = x.clone()
    other[1:] = torch.randn(11, T, F) * 3
    with torch.no_grad():
        a, b = net(x), net(other)
        alone = net(x[:1])
    for i in range(2):  # logits [B, H, 3], score [B, H]
        torch.testing.assert_close(a[i][0], b[i][0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(a[i][0], alone[i][0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", SEQUENCE_NETWORKS)
def test_a_windows_output_uses_its_latest_bar(name):
    """The window ends at the sample's bar: a network that ignores the last bar is misaligned."""
    net = build(name).eval()
    x = torch.randn(8, T, F)
    late = x.clone()
    late[:, -1, :] += 2.0
    with torch.no_grad():
        assert not torch.allclose(net(x)[0], net(late)[0], atol=1e-6)


@pytest.mark.parametrize("name", SEQUENCE_NETWORKS)
def test_it_can_overfit_a_tiny_set(name):
    """Capacity and gradient flow: 48 random windows with random classes are learnt by heart."""
    torch.manual_seed(1)
    net = build(name, heads=1)
    x, y = torch.randn(48, T, F), torch.randint(0, 3, (48,))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(400):
        net.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x)[0][:, 0], y)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(x)[0][:, 0].argmax(1) == y).float().mean().item()
    assert accuracy >= 0.9, f"{name}: {accuracy:.2f} train accuracy after 400 steps (loss {loss.item():.3f})"


def test_predict_runs_on_the_gpu_train_device_allows_and_export_pins_the_cpu(monkeypatch):
    """predict (evaluate, `trendfactory predict`) runs a network on a GPU when torch sees one
    and train.device is not cpu; a model fitted with device: cuda still predicts on a machine
    without one; export's parity check pins the CPU, where the exported file runs."""
    import dataclasses

    from tests.models.test_conformance import FAST_TRAIN

    model = fast_model("mlp")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for device, available, where in [("auto", False, cpu), ("cuda", False, cpu), ("auto", True, cuda), ("cuda", True, cuda), ("cpu", True, cpu)]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda a=available: a)
        model.train_config = dataclasses.replace(FAST_TRAIN, device=device)
        assert model.scoring_device() == where, (device, available)
    model.train_config = dataclasses.replace(FAST_TRAIN, device="auto")  # a GPU is seen (above)
    with model.predicting_on("cpu"):
        assert model.scoring_device() == cpu
    assert model.scoring_device() == cuda
