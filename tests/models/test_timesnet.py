"""TimesNet: each sample finds its own periods (never the batch's), and the merged inception conv
equals the mean of its separate kernels."""

from __future__ import annotations

import math

import torch

from trendfactory.models.zoo.timesnet import Inception2d, TimesBlock, top_periods


def test_each_sample_finds_its_own_period():
    L, d = 24, 4
    t = torch.arange(L, dtype=torch.float32)
    true = [4, 6, 12, 3, 8]
    x = torch.stack([torch.sin(2 * math.pi * t / p)[:, None].expand(L, d) * (1 + i) for i, p in enumerate(true)])  # [5, L, d]
    periods, weights = top_periods(x, 2)
    assert periods[:, 0].tolist() == true
    torch.testing.assert_close(weights.sum(1), torch.ones(len(true)))
    assert periods.min() >= 2 and periods.max() <= L


def test_a_samples_block_output_is_the_same_alone_and_in_any_batch():
    torch.manual_seed(0)
    block = TimesBlock(8, 8, 3, 2).eval()
    x = torch.randn(16, 30, 8)
    with torch.no_grad():
        full = block(x)
        for i in (0, 7, 15):
            torch.testing.assert_close(block(x[i : i + 1]), full[i : i + 1], atol=1e-5, rtol=1e-4)


def test_the_merged_inception_conv_is_the_mean_of_its_kernels():
    torch.manual_seed(0)
    inc = Inception2d(3, 5, 3)
    with torch.no_grad():
        for i, c in enumerate(inc.kernels):
            c.bias.fill_(0.1 * (i + 1))  # non-zero biases, so their average is checked too
    x = torch.randn(2, 3, 7, 4)
    with torch.no_grad():
        separate = torch.stack([torch.nn.functional.conv2d(x, c.weight, c.bias, padding=i) for i, c in enumerate(inc.kernels)]).mean(0)
        torch.testing.assert_close(inc(x), separate, atol=1e-5, rtol=1e-5)
