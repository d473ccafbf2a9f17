"""RWKV-TS: the stable WKV recurrence equals the formula evaluated directly, stays finite where
the direct form overflows, and is causal (as is the whole block stack over patch tokens)."""

from __future__ import annotations

import pytest
import torch

from trendfactory.models import create
from trendfactory.models.zoo.rwkv_ts import NEG, neg_start, wkv


def direct_wkv(decay, bonus, k, v):
    """wkv_t = (sum_{i<t} e^{-(t-1-i)w + k_i} v_i + e^{u + k_t} v_t) / (same without v), term by term."""
    B, T, D = k.shape
    out = torch.empty_like(v)
    for t in range(T):
        num = torch.exp(bonus + k[:, t]) * v[:, t]
        den = torch.exp(bonus + k[:, t])
        for i in range(t):
            e = torch.exp(-(t - 1 - i) * decay + k[:, i])
            num = num + e * v[:, i]
            den = den + e
        out[:, t] = num / den
    return out


def _inputs(seed: int = 0, B: int = 2, T: int = 7, D: int = 5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    decay = torch.exp(torch.randn(D, generator=g, dtype=dtype))  # w > 0
    bonus = torch.randn(D, generator=g, dtype=dtype)
    k = torch.randn(B, T, D, generator=g, dtype=dtype)
    v = torch.randn(B, T, D, generator=g, dtype=dtype)
    return decay, bonus, k, v


def test_recurrence_equals_the_direct_formula():
    for seed in range(3):
        decay, bonus, k, v = _inputs(seed)
        torch.testing.assert_close(wkv(decay, bonus, k, v), direct_wkv(decay, bonus, k, v), atol=1e-10, rtol=1e-10)


def test_recurrence_is_stable_for_large_keys():
    decay, bonus, k, v = _inputs(1, dtype=torch.float32)
    big = k * 60 + 60  # e^{k} overflows float32 beyond ~88
    y = wkv(decay, bonus, big, v)
    assert torch.all(torch.isfinite(y))
    expected = direct_wkv(decay.double(), bonus.double(), big.double(), v.double())
    torch.testing.assert_close(y.double(), expected, atol=1e-3, rtol=1e-3)


def test_recurrence_is_causal():
    decay, bonus, k, v = _inputs(2)
    k2, v2 = k.clone(), v.clone()
    k2[:, 4:] += 3.0
    v2[:, 4:] = torch.randn_like(v2[:, 4:])
    a, b = wkv(decay, bonus, k, v), wkv(decay, bonus, k2, v2)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=0, rtol=0)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_block_stack_is_causal_over_tokens():
    model = create("rwkv_ts", {"d_model": 16, "layers": 2, "ffn_mult": 2, "patch_len": 4})
    model.shape_ = (3, 24)
    torch.manual_seed(0)
    net = model.network(1).eval()
    h = torch.randn(2, 6, 16)
    later = h.clone()
    later[:, 3:] = torch.randn(2, 3, 16) * 3
    with torch.no_grad():
        a, b = net.blocks(h), net.blocks(later)
    torch.testing.assert_close(a[:, :3], b[:, :3], atol=0, rtol=0)
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_patches_cover_short_and_ragged_windows():
    for L, P in ((8, 5), (30, 5), (31, 5), (4, 10)):
        model = create("rwkv_ts", {"d_model": 16, "layers": 1, "ffn_mult": 2, "patch_len": P})
        model.shape_ = (3, L)
        net = model.network(2).eval()
        assert net.patch == min(P, L) and net.n_tokens * net.patch - net.lead == L
        with torch.no_grad():
            logits, score = net(torch.randn(2, L, 3))
        assert logits.shape == (2, 2, 3) and score.shape == (2, 2)


def test_the_start_exponent_is_finite_in_every_dtype_and_unchanged_in_float32():
    assert neg_start(torch.float32) == NEG == -1e38  # fp32/fp64/bf16: the constant the results were made with
    assert neg_start(torch.float64) == NEG and neg_start(torch.bfloat16) == NEG
    assert neg_start(torch.float16) == torch.finfo(torch.float16).min  # -1e38 overflows half precision
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert torch.isfinite(torch.full((2,), neg_start(dtype), dtype=dtype)).all()


def test_wkv_in_half_precision_matches_float64():
    decay, bonus, k, v = _inputs(3, B=3, T=9, D=6)
    want = direct_wkv(decay, bonus, k, v)
    for dtype in (torch.float16, torch.bfloat16):
        got = wkv(*(t.to(dtype) for t in (decay, bonus, k, v)))
        assert got.dtype == dtype and torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), want, atol=0.1, rtol=0.05)


def _net():
    model = create("rwkv_ts", {"d_model": 16, "layers": 2, "ffn_mult": 2, "patch_len": 4})
    model.shape_ = (3, 22)  # 22 bars: 2 zero bars padded in front of 6 tokens
    torch.manual_seed(0)
    return model.network(2).train()


def _finite_forward_backward(net, x, autocast_dtype=None):
    net.zero_grad(set_to_none=True)
    if autocast_dtype is None:
        logits, score = net(x)
    else:
        with torch.autocast(device_type="cpu", dtype=autocast_dtype):
            logits, score = net(x)
    assert torch.isfinite(logits).all() and torch.isfinite(score).all()
    (logits.float().square().mean() + score.float().mean()).backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    return logits


def test_the_network_runs_forward_and_backward_in_half_precision():
    """float16 (what train.precision auto picks on GPUs without bf16) and bfloat16, as whole
    half-precision networks and under CPU autocast: finite outputs and gradients."""
    x = torch.randn(4, 22, 3, generator=torch.Generator().manual_seed(1))
    ref = _finite_forward_backward(_net(), x)
    for dtype in (torch.float16, torch.bfloat16):
        out = _finite_forward_backward(_net().to(dtype), x.to(dtype))
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.1)
        out = _finite_forward_backward(_net(), x, autocast_dtype=dtype)
        torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_network_trains_under_cuda_fp16_autocast():
    net = _net().cuda()
    x = torch.randn(8, 22, 3, device="cuda")
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        logits, score = net(x)
    (logits.float().square().mean() + score.float().mean()).backward()
    assert torch.isfinite(logits).all() and all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
