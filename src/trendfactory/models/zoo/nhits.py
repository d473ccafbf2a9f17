"""Neural: N-HiTS-style blocks adapted to classifying the label.

Each block looks at the (residual) window through max pooling at its own rate, runs an MLP,
and emits (a) a backcast at the pooled resolution, interpolated back to the full window
(hierarchical interpolation) and subtracted from the residual the next block sees, and (b)
its contribution to the class logits and score. Coarse blocks (big pools) model the slow
trend, fine ones what is left. The contributions add up: a sum of per-block linear maps of the
blocks' hidden states is one linear map (the TrendHead) of their concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float
from trendfactory.params import DROPOUT, POS_LIST, pos_field


def interpolation_matrix(n: int, length: int) -> torch.Tensor:
    """[n, length] float32 weights W with ``x @ W`` = linear interpolation of x's last axis
    from n to ``length`` points, corners aligned (F.interpolate's mode="linear",
    align_corners=True): output i reads position s = i (n-1)/(length-1) of the input, weight
    1 - (s - floor s) at floor s and s - floor s at floor s + 1. Computed in float64."""
    w = torch.zeros(n, length, dtype=torch.float64)
    if n == 1 or length == 1:
        w[0] = 1.0
        return w.float()
    src = torch.arange(length, dtype=torch.float64) * ((n - 1) / (length - 1))
    lo = src.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = src - lo
    cols = torch.arange(length)
    w[lo, cols] += 1.0 - frac
    w[hi, cols] += frac
    return w.float()


class NHITSBlock(nn.Module):
    def __init__(self, n_features: int, seq_len: int, pool: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.pool = min(pool, seq_len)
        self.n_coarse = -(-seq_len // self.pool)  # pooled length (ceil)
        self.mlp = nn.Sequential(nn.Linear(n_features * self.n_coarse, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU())
        self.backcast = nn.Linear(hidden, n_features * self.n_coarse)  # coefficients at the pooled rate
        self.identity = self.n_coarse == seq_len  # pool 1: the pooled length is the window's (no interpolation)
        # [n_coarse, L] weights of the interpolation back to the window (used off the CPU; derived, not saved)
        self.register_buffer("interp", interpolation_matrix(self.n_coarse, seq_len), persistent=False)

    def forward(self, r):  # r: [B, F, L] residual window
        B, F, L = r.shape
        pooled = nn.functional.max_pool1d(r, self.pool, self.pool, ceil_mode=True)  # [B, F, L/pool]
        h = self.mlp(pooled.reshape(B, F * self.n_coarse))  # [B, H]
        coarse = self.backcast(h).reshape(B, F, self.n_coarse)  # [B, F, L/pool]
        if self.identity:  # pool 1: the backcast is already at full resolution (n_coarse == L)
            # linear interpolation with align_corners=True from L to L points is the identity
            # (source position i * (L-1)/(L-1) = i exactly, weights 1 and 0: 1*x_i + 0*x_{i+1} =
            # x_i, gradients likewise), so skipping it gives the same values and gradients
            # (up to the sign of an exact zero, which nothing downstream reads): checked with
            # torch.equal against the interpolating formula in tests/models/test_nhits.py
            back = coarse
        elif self.n_coarse > 1:
            back = self.upsample(coarse, L)  # [B, F, L]
        else:
            back = coarse.expand(B, F, L)
        return r - back, h  # [B, F, L], [B, H]: the residual and this block's forecast features

    def upsample(self, coarse: torch.Tensor, L: int) -> torch.Tensor:
        """Linear interpolation (align_corners=True) of [B, F, n_coarse] to [B, F, L].

        On the CPU: ``F.interpolate``, whose results the committed outputs were made with. On
        other devices: the same interpolation as one matmul with the fixed [n_coarse, L] weight
        matrix (two non-zero weights per column), in float32 as the CUDA kernel computes it and
        cast back to the input's dtype. CUDA's upsample_linear1d kernels (forward and backward)
        run one thread per *output position* -- 30 threads here -- each looping over every
        sample and feature, which made them nearly all of N-HiTS's GPU time; a matmul uses the
        whole GPU. Equal to F.interpolate up to rounding (tests/models/test_nhits.py)."""
        if coarse.device.type == "cpu":
            return nn.functional.interpolate(coarse, size=L, mode="linear", align_corners=True)
        with torch.autocast(coarse.device.type, enabled=False):  # the weights stay float32 under bf16/fp16 autocast
            return torch.matmul(coarse.float(), self.interp).to(coarse.dtype)


class NHITSNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, pools: tuple[int, ...], hidden: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(NHITSBlock(n_features, seq_len, p, hidden, dropout) for p in pools)
        self.head = TrendHead(hidden * len(pools))

    def forward(self, x):  # x: [B, L, F]
        r = x.transpose(1, 2)  # [B, F, L]
        forecasts = []
        for block in self.blocks:
            r, h = block(r)
            forecasts.append(h)
        return self.head(torch.cat(forecasts, dim=1))  # [B, H * blocks] -> the blocks' summed contributions


@dataclass(frozen=True)
class NHITSConfig:
    pool_sizes: tuple[int, ...] = field(default=(8, 4, 1), metadata=POS_LIST)  # one block per rate
    hidden: int = pos_field(128)
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "nhits", kind="network", config=NHITSConfig, needs_sequences=True, can_use_gpu=True)
class NHITS(NeuralModel):
    """N-HiTS-style multi-rate pooling MLP blocks with hierarchical interpolation."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "hidden": Choice((64, 128, 256)),
        "dropout": Float(0.0, 0.5),
    }

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return NHITSNet(n_features, seq_len, tuple(c.pool_sizes), c.hidden, c.dropout)
