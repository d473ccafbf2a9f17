"""Informer's ProbSparse self-attention: exact full attention when every query is active, the
lazy queries output the mean of V, the active ones are the top-u by the sparsity measurement,
and the key sample is fixed (independent of the batch and of the global RNG)."""

from __future__ import annotations

import math

import pytest
import torch

from trendfactory.models.zoo.informer import InformerNet, ProbSparseAttention, log_count


def _qkv(b=3, h=2, n=10, e=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, e, generator=g) for _ in range(3)]


def _full(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def test_probsparse_equals_full_attention_when_u_covers_the_window():
    q, k, v = _qkv(n=8)
    attn = ProbSparseAttention(factor=10)  # u = 10 * ceil(ln 8) = 30 >= 8
    assert log_count(10, 8) == 8
    torch.testing.assert_close(attn(q, k, v), _full(q, k, v))


def test_lazy_queries_get_the_mean_of_v_and_active_ones_full_attention():
    q, k, v = _qkv(n=40)
    attn = ProbSparseAttention(factor=2)  # U = u = 2 * ceil(ln 40) = 8 of 40
    u = log_count(2, 40)
    assert u == 8
    out = attn(q, k, v)
    m = attn.sparsity(q, k, 1 / math.sqrt(q.shape[-1]))  # [B, H, L]
    full, mean_v = _full(q, k, v), v.mean(dim=2, keepdim=True).expand_as(v)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            top = set(m[b, h].topk(u).indices.tolist())
            for i in range(q.shape[2]):
                want = full[b, h, i] if i in top else mean_v[b, h, i]
                torch.testing.assert_close(out[b, h, i], want)


def test_the_key_sample_is_fixed_and_per_sample():
    q, k, v = _qkv(n=40)
    attn = ProbSparseAttention(factor=2)
    torch.manual_seed(0)
    a = attn(q, k, v)
    torch.manual_seed(123)  # the global RNG does not change the sample
    b = attn(q, k, v)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    alone = attn(q[1:2], k[1:2], v[1:2])  # the top-u queries are chosen per sample
    torch.testing.assert_close(a[1:2], alone)


def test_distilling_halves_the_length_and_keeps_the_last_bar():
    net = InformerNet(5, 9, d_model=8, heads=2, layers=3, factor=3, d_ff=16, dropout=0.0, distil=True).eval()
    x = torch.randn(4, 9, 5)
    lens = []
    h = net.token(x.transpose(1, 2)).transpose(1, 2)
    for i, layer in enumerate(net.layers):
        h = layer(h)
        if i < len(net.distil):
            h = net.distil[i](h)
        lens.append(h.shape[1])
    assert lens == [5, 3, 3]  # 9 -> 5 -> 3, no distilling after the last layer
    late = x.clone()
    late[:, -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(net(x)[0], net(late)[0])


def test_the_key_sample_is_the_cpu_generators_draw():
    """The indices are the ones the CPU generator draws from the constant seed (what the model
    has always used, so CPU results are unchanged), whatever else ran before."""
    attn = ProbSparseAttention(factor=2, seed=123)
    for l_q, l_k in ((40, 40), (30, 30), (15, 15), (12, 20)):
        n = log_count(2, l_k)
        g = torch.Generator().manual_seed(123 + 1009 * l_q + l_k)
        want = torch.randint(l_k, (l_q, n), generator=g).to(torch.device("cpu"))  # the old formula
        torch.manual_seed(l_q)  # the global RNG plays no part
        got = attn.key_sample(l_q, l_k, n, torch.device("cpu"))
        assert got.device.type == "cpu" and torch.equal(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_key_sample_is_the_same_on_cuda():
    attn = ProbSparseAttention(factor=2)
    cpu = attn.key_sample(40, 40, 8, torch.device("cpu"))
    gpu = attn.key_sample(40, 40, 8, torch.device("cuda"))
    torch.cuda.synchronize()
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)  # the same keys as on the CPU
    import warnings

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            attn.key_sample(40, 40, 8, torch.device("cuda"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert not [w for w in caught if "synchronizing" in str(w.message)]  # an asynchronous copy: no host sync
