"""TimesNet: each sample finds its own periods (never the batch's), and the merged inception conv
equals the mean of its separate kernels."""

from __future__ import annotations

import math

import pytest
import torch

from trendfactory.models.zoo.timesnet import Inception2d, TimesBlock, period_groups, top_periods


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


def old_block_forward(block, x):
    """TimesBlock.forward as it was: torch.unique(...).tolist() and a nonzero() per period."""
    B, L, d = x.shape
    periods, weights = top_periods(x, min(block.k, L // 2))
    weights = weights.to(x.dtype)
    out = torch.zeros_like(x)
    for p in torch.unique(periods).tolist():
        chose = periods == p
        idx = chose.any(1).nonzero().squeeze(1)
        w = (weights * chose).sum(1)[idx]
        rows = -(-L // p)
        sub = torch.nn.functional.pad(x[idx], (0, 0, 0, rows * p - L))
        grid = sub.reshape(len(idx), rows, p, d).permute(0, 3, 1, 2)
        y = block.conv(grid).permute(0, 2, 3, 1).reshape(len(idx), rows * p, d)[:, :L]
        out = out.index_add(0, idx, y * w[:, None, None])
    return out + x


def test_period_groups_are_the_unique_periods_and_their_samples():
    g = torch.Generator().manual_seed(0)
    for L, k, B in ((30, 2, 64), (30, 3, 1), (24, 1, 17), (7, 3, 9), (2, 1, 4)):
        freq = torch.stack([torch.randperm(L // 2, generator=g)[:k] for _ in range(B)])  # k distinct frequencies per sample
        periods = L // (freq + 1)  # as top_periods makes them: two frequencies may give one period
        got = period_groups(periods, L)
        want = [(p, (periods == p).any(1).nonzero().squeeze(1)) for p in torch.unique(periods).tolist()]
        assert [p for p, _ in got] == [p for p, _ in want]
        for (_, a), (_, b) in zip(got, want):
            assert a.dtype == b.dtype and torch.equal(a, b)
    assert period_groups(torch.zeros(5, 0, dtype=torch.long), 30) == []


def test_the_block_is_bit_identical_to_the_unique_nonzero_loop():
    """Forward and backward torch.equal to the old per-period loop, on random inputs."""
    for seed in range(3):
        torch.manual_seed(seed)
        block = TimesBlock(8, 8, 3, 2).train()
        x0 = torch.randn(48, 30, 8, generator=torch.Generator().manual_seed(10 + seed))
        results = []
        for forward in (block, lambda t: old_block_forward(block, t)):
            block.zero_grad(set_to_none=True)
            x = x0.clone().requires_grad_(True)
            y = forward(x)
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
            results.append((y.detach(), x.grad, [p.grad for p in block.parameters()]))
        (y_new, gx_new, gp_new), (y_old, gx_old, gp_old) = results
        assert torch.equal(y_new, y_old) and torch.equal(gx_new, gx_old)
        assert all(torch.equal(a, b) for a, b in zip(gp_new, gp_old))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_period_groups_on_cuda_match_the_cpu():
    g = torch.Generator().manual_seed(1)
    periods = 30 // (torch.stack([torch.randperm(15, generator=g)[:2] for _ in range(512)]) + 1)
    cpu, gpu = period_groups(periods, 30), period_groups(periods.cuda(), 30)
    assert [p for p, _ in gpu] == [p for p, _ in cpu]
    assert all(b.device.type == "cuda" and torch.equal(b.cpu(), a) for (_, a), (_, b) in zip(cpu, gpu))


def _syncs(fn) -> int:
    """How many synchronizing CUDA operations ``fn()`` runs (torch's sync debug mode)."""
    import warnings

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_period_groups_sync_the_host_once():
    periods = 30 // (torch.randint(0, 15, (512, 2), device="cuda") + 1)
    assert _syncs(lambda: period_groups(periods, 30)) == 1  # the counts' one transfer
