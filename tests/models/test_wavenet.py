"""WaveNet: the last bar's output sees exactly its receptive field, 1 + (k - 1) * sum(dilations) bars."""

from __future__ import annotations

import torch

from trendfactory.models import create
from trendfactory.models.zoo.wavenet import WaveNetConfig, receptive_field


def test_the_default_receptive_field_covers_the_default_window():
    c = WaveNetConfig()
    assert receptive_field(c.kernel_size, c.dilations) == 32 >= 30


def test_the_output_sees_its_receptive_field_and_nothing_older():
    model = create("wavenet", {"channels": 8, "skip_channels": 8, "kernel_size": 2, "dilations": [1, 2, 4]})
    L, F = 20, 3
    model.shape_ = (F, L)
    torch.manual_seed(0)
    net = model.network(1).eval()
    rf = net.receptive_field
    assert rf == 8
    x = torch.randn(4, L, F)
    with torch.no_grad():
        base = net(x)[0]
        old = x.clone()
        old[:, : L - rf] = torch.randn(4, L - rf, F) * 5  # bars older than the receptive field
        torch.testing.assert_close(net(old)[0], base, atol=0, rtol=0)
        edge = x.clone()
        edge[:, L - rf] += 3.0  # the oldest bar inside it
        assert not torch.allclose(net(edge)[0], base, atol=1e-6)
