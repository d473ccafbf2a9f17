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


class NHITSBlock(nn.Module):
    def __init__(self, n_features: int, seq_len: int, pool: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.pool = min(pool, seq_len)
        self.n_coarse = -(-seq_len // self.pool)  # pooled length (ceil)
        self.mlp = nn.Sequential(
            nn.Linear(n_features * self.n_coarse, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.backcast = nn.Linear(hidden, n_features * self.n_coarse)  # coefficients at the pooled rate

    def forward(self, r):  # r: [B, F, L] residual window
        B, F, L = r.shape
        pooled = nn.functional.max_pool1d(r, self.pool, self.pool, ceil_mode=True)  # [B, F, L/pool]
        h = self.mlp(pooled.reshape(B, F * self.n_coarse))  # [B, H]
        coarse = self.backcast(h).reshape(B, F, self.n_coarse)  # [B, F, L/pool]
        back = nn.functional.interpolate(coarse, size=L, mode="linear", align_corners=True) if self.n_coarse > 1 else coarse.expand(B, F, L)
        return r - back, h  # [B, F, L], [B, H]: the residual and this block's forecast features


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
