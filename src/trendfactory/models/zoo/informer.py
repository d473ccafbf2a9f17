"""Neural: Informer -- a transformer encoder with ProbSparse self-attention and self-attention
distilling between its layers; the last position of the final layer feeds the head.

Paper: Haoyi Zhou, Shanghang Zhang, Jieqi Peng, Shuai Zhang, Jianxin Li, Hui Xiong and Wancai
Zhang (2021), "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
Forecasting", AAAI 2021. Reference implementation: github.com/zhouhaoyi/Informer2020
(``models/attn.py``, ``models/encoder.py``, ``models/embed.py``).

How this version maps to the paper:

- **Embedding**: a Conv1d (kernel 3) over the features maps each bar to a ``d_model`` token
  ("TokenEmbedding"), plus the fixed sinusoidal positional encoding. The paper's global time
  stamp embedding (minute/hour/week/month/holiday) is left out: the windows carry no calendar
  stamps, and the features already describe each bar. The reference pads the token convolution
  circularly, which would mix the window's first bar into its last token; here the padding
  replicates the edge bars, so the last token sees bars L-2, L-1 (and L-1 again).
- **ProbSparse self-attention** (paper Sec. "Efficient Self-attention Mechanism"): for every
  query the sparsity measurement M(q_i, K) = max_j(q_i k_j / sqrt(d)) - mean_j(q_i k_j / sqrt(d))
  is estimated on U = c * ceil(ln L) sampled keys (each query its own sample, as in the
  reference); only the top u = c * ceil(ln L) queries by M get full softmax attention over all
  keys, the other ("lazy") queries output the mean of V (what uniform attention would give).
  Both U and u are capped at L, so with u >= L it is exactly full attention.
  Two deliberate departures for this project's contract: (1) the key sample comes from a CPU
  ``torch.Generator`` seeded from a constant (and the layer's index and length), not from the
  global RNG -- the same keys in training and evaluation, on every device (drawn on the CPU,
  copied to the GPU asynchronously), so a prediction is deterministic and never depends on
  what else is in the batch; (2) the top-u queries are
  chosen per sample and head (``topk`` along the length axis of [B, H, L]), never over the batch.
  The mean in M uses the sampled keys (the paper's estimator; the reference divides the sampled
  sum by L_K instead). The encoder attends without a mask, as in the reference: every bar in the
  window is at or before the sample's own (last) bar, so nothing looks ahead.
- **Encoder layer**: attention + residual + LayerNorm, then the position-wise feed-forward
  (GELU) + residual + LayerNorm (post-norm, as the reference).
- **Self-attention distilling** between encoder layers: Conv1d (kernel 3) + ELU + MaxPool
  (kernel 3, stride 2, padding 1), halving the length (L -> ceil(L / 2)). The reference
  normalises with BatchNorm1d, which mixes statistics across the batch; here it is a LayerNorm
  over the channels, so a window's output depends on that window alone. The pool's last window
  always covers the last position, so the last bar reaches the final layer's last position.
- **Left out**: the generative-style decoder (start-token + masked ProbSparse self-attention +
  cross-attention), which produces multi-step forecasts in one pass; here the task is to
  classify one window into down/flat/up per horizon, so a classification head reads the
  encoder's last position (after the encoder's final LayerNorm). Also left out: the stacked
  encoder replicas on halved inputs ("Informer-stack").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead, sinusoidal_encoding
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float, Int
from trendfactory.params import DROPOUT, pos_field

SAMPLE_SEED = 20210202  # the constant the key samples are drawn from (AAAI 2021)


def log_count(factor: int, length: int) -> int:
    """c * ceil(ln L), at least 1 and at most L: the number of sampled keys U and of active
    queries u (the reference's ``U_part`` and ``u``)."""
    return max(1, min(length, factor * math.ceil(math.log(length)) if length > 1 else 1))


class ProbSparseAttention(nn.Module):
    """ProbSparse attention on already projected heads (no mask: an encoder's self-attention).

    ``q``, ``k``, ``v``: [B, H, L, E] -> [B, H, L_Q, E]. ``seed`` fixes the key sample; the
    same (seed, L_Q, L_K) gives the same sample on every call, in training and evaluation.
    """

    def __init__(self, factor: int, seed: int = SAMPLE_SEED) -> None:
        super().__init__()
        self.factor, self.seed = factor, seed

    def extra_repr(self) -> str:
        return f"factor={self.factor}"

    def key_sample(self, l_q: int, l_k: int, n_sample: int, device: torch.device) -> torch.Tensor:
        """[L_Q, U] key indices per query, drawn (with replacement, as the reference) from a
        generator seeded from a constant: independent of the batch and of the global RNG.

        Drawn by the CPU generator (MT19937) whatever ``device`` is, deliberately: a CUDA
        generator (Philox) draws other indices from the same seed, so CUDA draws would differ
        from CPU draws -- and a network trained on a GPU may predict on a CPU (a machine
        without one), where it would then sample other keys than it was trained and
        early-stopped with. What cost the GPU path was the copy, a blocking ``.to(device)``
        (a host sync per layer per forward); here the few hundred indices go through pinned
        memory with ``non_blocking=True``, which does not wait for the GPU. On the CPU nothing
        changed: the same draw, no copy."""
        g = torch.Generator().manual_seed(self.seed + 1009 * l_q + l_k)
        idx = torch.randint(l_k, (l_q, n_sample), generator=g)  # [L_Q, U] on the CPU
        if device.type == "cpu":
            return idx
        if device.type == "cuda":  # pinned source: an asynchronous copy, ordered on the current stream
            return idx.pin_memory().to(device, non_blocking=True)
        return idx.to(device)

    def sparsity(self, q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
        """M(q_i, K) = max_j s_ij - mean_j s_ij over the sampled keys: [B, H, L_Q]."""
        l_q, l_k = q.shape[2], k.shape[2]
        n_sample = log_count(self.factor, l_k)
        s = q @ k.transpose(-2, -1)  # [B, H, L_Q, L_K]
        if n_sample < l_k:
            # query i's own sampled keys. The sampled q_i k_j are read from the one [L_Q, L_K]
            # product: at these window lengths (<= 60 bars) that is cheaper on the CPU than
            # gathering U keys per query ([B, H, L_Q, U, E]), and the values are the same.
            idx = self.key_sample(l_q, l_k, n_sample, q.device)  # [L_Q, U]
            s = s.gather(-1, idx.expand(*s.shape[:2], l_q, n_sample))  # [B, H, L_Q, U]
        s = s * scale
        return s.amax(dim=-1) - s.mean(dim=-1)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, H, l_q, E = q.shape
        scale = 1.0 / math.sqrt(E)
        n_top = log_count(self.factor, l_q)
        if n_top >= l_q:  # every query is active: plain full attention
            attn = torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1)  # [B, H, L_Q, L_K]
            return attn @ v  # [B, H, L_Q, E]
        with torch.no_grad():  # only the ranking of M is used (topk has no gradient)
            m = self.sparsity(q, k, scale)  # [B, H, L_Q]
        top = m.topk(n_top, dim=-1, sorted=False).indices  # [B, H, u]: per sample and head
        top_e = top[..., None].expand(B, H, n_top, E)  # [B, H, u, E]
        q_top = q.gather(2, top_e)  # [B, H, u, E]: the active queries
        attn = torch.softmax((q_top @ k.transpose(-2, -1)) * scale, dim=-1)  # [B, H, u, L_K]
        out_top = attn @ v  # [B, H, u, E]
        # lazy queries: uniform attention = the mean of V; active ones overwrite their rows
        lazy = v.mean(dim=2, keepdim=True).expand(B, H, l_q, E)  # [B, H, L_Q, E]
        return lazy.scatter(2, top_e, out_top.to(lazy.dtype))  # [B, H, L_Q, E]


class ProbAttentionLayer(nn.Module):
    """Multi-head projections around :class:`ProbSparseAttention`: [B, L, D] -> [B, L, D]."""

    def __init__(self, d_model: int, heads: int, factor: int, seed: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.attn = ProbSparseAttention(factor, seed)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, D]
        B, L, D = x.shape
        H = self.heads

        def split(t):  # [B, L, D] -> [B, H, L, D/H]
            return t.view(B, L, H, D // H).transpose(1, 2)

        out = self.attn(split(self.q(x)), split(self.k(x)), split(self.v(x)))  # [B, H, L, D/H]
        return self.out(out.transpose(1, 2).reshape(B, L, D))  # [B, L, D]


class InformerEncoderLayer(nn.Module):
    """ProbSparse self-attention and feed-forward, each with residual + LayerNorm (post-norm)."""

    def __init__(self, d_model: int, heads: int, factor: int, d_ff: int, dropout: float, seed: int) -> None:
        super().__init__()
        self.attn = ProbAttentionLayer(d_model, heads, factor, seed)
        self.ff1, self.ff2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)  # the reference's kernel-1 convs
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, D]
        x = self.norm1(x + self.drop(self.attn(x)))
        y = self.drop(self.ff2(self.drop(nn.functional.gelu(self.ff1(x)))))
        return self.norm2(x + y)  # [B, L, D]


class DistillingLayer(nn.Module):
    """Self-attention distilling: Conv1d(k=3) + norm + ELU + MaxPool(k=3, s=2): [B, L, D] -> [B, ceil(L/2), D].

    LayerNorm over channels instead of the reference's BatchNorm1d (no statistics across the
    batch); replicate padding instead of circular (the last position does not see the first bar).
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, 3, padding=1, padding_mode="replicate")
        self.norm = nn.LayerNorm(d_model)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)  # its last window always holds position L-1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, D]
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # [B, D, L] -> [B, L, D]
        h = nn.functional.elu(self.norm(h))
        return self.pool(h.transpose(1, 2)).transpose(1, 2)  # [B, D, ceil(L/2)] -> [B, ceil(L/2), D]


class InformerNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, d_model: int, heads: int, layers: int, factor: int, d_ff: int, dropout: float, distil: bool) -> None:
        super().__init__()
        self.token = nn.Conv1d(n_features, d_model, 3, padding=1, padding_mode="replicate")
        self.register_buffer("pe", sinusoidal_encoding(seq_len, d_model)[None], persistent=False)  # [1, L, D]
        self.drop = Dropout(dropout)
        # each layer its own key-sample seed, so layers of equal length sample different keys
        self.layers = nn.ModuleList(InformerEncoderLayer(d_model, heads, factor, d_ff, dropout, SAMPLE_SEED + 7919 * i) for i in range(layers))
        self.distil = nn.ModuleList(DistillingLayer(d_model) for _ in range(layers - 1)) if distil else None
        self.norm = nn.LayerNorm(d_model)
        self.head = TrendHead(d_model)

    def forward(self, x: torch.Tensor):  # x: [B, L, F]
        L = x.shape[1]
        pe = self.pe[:, :L] if L <= self.pe.shape[1] else sinusoidal_encoding(L, self.pe.shape[2])[None].to(x.device)
        h = self.token(x.transpose(1, 2)).transpose(1, 2)  # [B, F, L] -> [B, D, L] -> [B, L, D]
        h = self.drop(h + pe.to(h.dtype))
        for i, layer in enumerate(self.layers):
            h = layer(h)  # [B, L_i, D]
            if self.distil is not None and i < len(self.distil):
                h = self.distil[i](h)  # [B, ceil(L_i / 2), D]
        return self.head(self.norm(h)[:, -1])  # [B, D] at the position that holds the window's end row


@dataclass(frozen=True)
class InformerConfig:
    d_model: int = pos_field(32)
    heads: int = pos_field(4)
    layers: int = pos_field(2)  # encoder layers; with distil, a distilling layer between each pair
    factor: int = pos_field(5)  # c: U = u = c * ceil(ln L) sampled keys / active queries
    d_ff: int = pos_field(64)
    dropout: float = field(default=0.1, metadata=DROPOUT)
    distil: bool = True


@register("neural", "informer", kind="network", config=InformerConfig, needs_sequences=True, can_use_gpu=True)
class Informer(NeuralModel):
    """Informer encoder: ProbSparse self-attention + distilling; head on the last position."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "d_model": Choice((16, 32, 64)),
        "layers": Int(1, 3),
        "dropout": Float(0.0, 0.5),
    }

    # factor 3 on the tests' 24-bar windows: u = 12 of 24 queries, then 9 of 12 (sparse in both layers)
    tiny_config: ClassVar[dict] = {"d_model": 16, "heads": 2, "layers": 2, "factor": 3, "d_ff": 32, "dropout": 0.05}

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        if c.d_model % c.heads:
            from trendfactory.errors import ParamsError

            raise ParamsError(f"models.informer.d_model: got {c.d_model}, expected a multiple of models.informer.heads ({c.heads})")
        return InformerNet(n_features, seq_len, c.d_model, c.heads, c.layers, c.factor, c.d_ff, c.dropout, c.distil)
