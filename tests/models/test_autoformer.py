"""Autoformer: the series decomposition adds back up and never looks past the last bar; the
Auto-Correlation finds a planted period and picks its delays per sample."""

from __future__ import annotations

import math

import torch

from trendfactory.models.zoo.autoformer import AutoCorrelation, AutoformerNet, SeriesDecomp, odd_kernel


def test_decomposition_adds_up_and_clamps_the_kernel():
    x = torch.randn(3, 8, 4)
    for kernel in (3, 5, 25):
        seasonal, trend = SeriesDecomp(kernel)(x)
        torch.testing.assert_close(seasonal + trend, x)
    assert odd_kernel(25, 8) == 7 and odd_kernel(25, 9) == 9 and odd_kernel(5, 30) == 5
    # kernel 3 at the last bar: the mean of bars L-2, L-1 and L-1 again (replicate padding)
    _, trend = SeriesDecomp(3)(x)
    torch.testing.assert_close(trend[:, -1], (x[:, -2] + 2 * x[:, -1]) / 3)


def test_decomposition_never_looks_past_the_window():
    # the trend at the last bar averages only the last (k+1)/2 bars (the padding repeats the
    # last bar): nothing after it, and nothing earlier than k // 2 bars before it
    x = torch.randn(2, 12, 3)
    _, trend = SeriesDecomp(5)(x)
    changed = x.clone()
    changed[:, :-3] += 10.0  # bars more than (k-1)/2 before the end do not enter the last trend
    _, trend2 = SeriesDecomp(5)(changed)
    torch.testing.assert_close(trend[:, -1], trend2[:, -1])


def test_autocorrelation_finds_a_planted_period():
    L, period = 24, 6
    t = torch.arange(L, dtype=torch.float32)
    wave = torch.sin(2 * math.pi * t / period)  # [L]
    q = wave.expand(1, 1, 1, L).clone()
    corr = AutoCorrelation(factor=1).correlation(q, q)[0, 0, 0]  # [L]
    top = set(corr.topk(4).indices.tolist())
    assert top <= {0, 6, 12, 18}


def test_delays_are_chosen_per_sample():
    ac = AutoCorrelation(factor=2)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(5, 2, 3, 16, generator=g) for _ in range(3))
    out = ac(q, k, v)
    alone = ac(q[2:3], k[2:3], v[2:3])
    torch.testing.assert_close(out[2:3], alone)
    assert AutoCorrelation(factor=1).top_k(2) == 1 and ac.top_k(16) == 5  # int(c * ln L), at least 1


def test_last_bar_moves_the_output():
    net = AutoformerNet(4, 10, d_model=8, heads=2, layers=1, factor=1, d_ff=16, moving_avg=25, dropout=0.0).eval()
    x = torch.randn(3, 10, 4)
    late = x.clone()
    late[:, -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(net(x)[0], net(late)[0])


def test_aggregation_is_the_weighted_sum_of_rolled_values():
    ac = AutoCorrelation(factor=2)
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(3, 2, 4, 12, generator=g) for _ in range(3))
    weights, delays = ac.correlation(q, k).mean(dim=(1, 2)).topk(ac.top_k(12), dim=-1)
    weights = torch.softmax(weights, dim=-1)
    want = torch.zeros_like(v)
    for b in range(3):
        for i in range(delays.shape[1]):
            want[b] += weights[b, i] * torch.roll(v[b], -int(delays[b, i]), dims=-1)  # out[t] = V[t + tau]
    torch.testing.assert_close(ac(q, k, v), want, atol=1e-5, rtol=1e-4)
