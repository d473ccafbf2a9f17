"""N-HiTS: skipping the identity interpolation of the pool-1 block changes nothing on the CPU
(outputs and gradients torch.equal to the interpolating formula), and the interpolation matrix
used off the CPU equals F.interpolate up to rounding."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from trendfactory.models import create
from trendfactory.models.zoo.nhits import NHITSNet, interpolation_matrix


def old_block_forward(block, r):
    """NHITSBlock.forward as it was: interpolate whenever the pooled length is above 1."""
    B, n_feat, L = r.shape
    pooled = F.max_pool1d(r, block.pool, block.pool, ceil_mode=True)
    h = block.mlp(pooled.reshape(B, n_feat * block.n_coarse))
    coarse = block.backcast(h).reshape(B, n_feat, block.n_coarse)
    back = F.interpolate(coarse, size=L, mode="linear", align_corners=True) if block.n_coarse > 1 else coarse.expand(B, n_feat, L)
    return r - back, h


def old_net_forward(net, x):
    r = x.transpose(1, 2)
    forecasts = []
    for block in net.blocks:
        r, h = old_block_forward(block, r)
        forecasts.append(h)
    return net.head(torch.cat(forecasts, dim=1))


def _run(net, forward, x, seed):
    """Outputs, input gradient and parameter gradients of one train-mode forward + backward."""
    net.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(seed)  # the same dropout masks for both formulas
    logits, score = forward(x)
    (logits.pow(2).sum() + (score * torch.linspace(-1, 1, score.numel()).view_as(score)).sum()).backward()
    # (the last block's backcast gets no gradient: nothing reads its residual)
    return logits.detach(), score.detach(), x.grad, {k: p.grad for k, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_skipping_the_identity_interpolation_is_bit_identical(dtype):
    """The default configuration (pools 8, 4, 1 on 30-bar windows: the pool-1 block's backcast
    is 30 -> 30): forward and backward equal (torch.equal) to the old formula, dropout on."""
    for seed in range(3):
        torch.manual_seed(seed)
        net = NHITSNet(n_features=13, seq_len=30, pools=(8, 4, 1), hidden=32, dropout=0.1).to(dtype).train()
        assert [b.n_coarse for b in net.blocks] == [4, 8, 30]
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.randn(64, 30, 13, generator=g, dtype=dtype) * 2
        new = _run(net, net, x, seed)
        old = _run(net, lambda t: old_net_forward(net, t), x, seed)
        for a, b in zip(new[:3], old[:3]):
            assert torch.equal(a, b)
        assert new[3].keys() == old[3].keys() and len(new[3]) == len(list(net.parameters())) - 2
        for k in new[3]:
            assert torch.equal(new[3][k], old[3][k]), k


def test_registered_model_matches_the_old_formula_in_eval_mode():
    model = create("nhits", {"pool_sizes": [8, 4, 1], "hidden": 16})
    model.shape_ = (7, 30)
    torch.manual_seed(0)
    net = model.network(2).eval()
    x = torch.randn(32, 30, 7)
    with torch.no_grad():
        for a, b in zip(net(x), old_net_forward(net, x)):
            assert torch.equal(a, b)


@pytest.mark.parametrize(("n", "length"), [(4, 30), (8, 30), (2, 30), (3, 7), (29, 30), (5, 5), (1, 9)])
def test_the_interpolation_matrix_is_linear_interpolation_with_aligned_corners(n, length):
    g = torch.Generator().manual_seed(n * 100 + length)
    coarse = torch.randn(6, 5, n, generator=g, dtype=torch.float64, requires_grad=True)
    w = interpolation_matrix(n, length)
    assert w.shape == (n, length) and w.dtype == torch.float32
    torch.testing.assert_close(w.sum(0), torch.ones(length))  # each output: a convex combination
    want = F.interpolate(coarse, size=length, mode="linear", align_corners=True)
    got = coarse @ w.double()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    up = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (g_want,) = torch.autograd.grad(want, coarse, up)
    (g_got,) = torch.autograd.grad(got, coarse, up)
    torch.testing.assert_close(g_got, g_want, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_upsampling_matches_the_cpu_interpolation():
    torch.manual_seed(0)
    net = NHITSNet(n_features=13, seq_len=30, pools=(8, 4, 1), hidden=32, dropout=0.0).eval()
    x = torch.randn(256, 30, 13)
    with torch.no_grad():
        cpu = net(x)
        gpu = net.to("cuda")(x.to("cuda"))
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits, score = net(x.to("cuda"))
    assert torch.isfinite(logits).all() and torch.isfinite(score).all()
