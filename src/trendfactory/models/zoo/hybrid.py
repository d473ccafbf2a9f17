"""Neural: Conv1d feature extractor -> LSTM -> multi-head attention, fused with the current
technical-indicator row, then an MLP head."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float
from trendfactory.params import DROPOUT, check, pos_field


class HybridNet(nn.Module):
    def __init__(self, n_features: int, conv: int, kernel: int, hidden: int, heads: int, head_hidden: int, dropout: float) -> None:
        super().__init__()
        self.pad = kernel - 1  # causal: the conv at t sees bars <= t
        self.conv = nn.Conv1d(n_features, conv, kernel)
        self.lstm = nn.LSTM(conv, hidden, batch_first=True)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.fuse = nn.Sequential(nn.Linear(2 * hidden + n_features, head_hidden), nn.GELU(), Dropout(dropout), nn.Linear(head_hidden, head_hidden), nn.GELU())
        self.head = TrendHead(head_hidden)

    def forward(self, x):  # x: [B, L, F]
        c = torch.relu(self.conv(nn.functional.pad(x.transpose(1, 2), (self.pad, 0))))  # [B, C, L]
        seq, _ = self.lstm(c.transpose(1, 2))  # [B, L, H]
        last = seq[:, -1:]  # [B, 1, H]: the end row asks what in the window matters
        ctx, _ = self.attn(last, seq, seq, need_weights=False)  # [B, 1, H]
        z = torch.cat([last[:, 0], ctx[:, 0], x[:, -1]], dim=1)  # [B, 2H + F]: + the current indicator row
        return self.head(self.fuse(z))


@dataclass(frozen=True)
class HybridConfig:
    conv_channels: int = pos_field(32)
    kernel_size: int = field(default=3, metadata=check(lambda v: v >= 1, "an integer >= 1"))
    lstm_hidden: int = pos_field(64)
    heads: int = pos_field(4)
    head_hidden: int = pos_field(64)
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "hybrid", kind="network", config=HybridConfig, needs_sequences=True, can_use_gpu=True)
class Hybrid(NeuralModel):
    """Conv1d -> LSTM -> attention, fused with the current indicator row, MLP head."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "conv_channels": Choice((16, 32, 64)),
        "lstm_hidden": Choice((32, 64, 128)),
        "dropout": Float(0.0, 0.5),
    }

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        if c.lstm_hidden % c.heads:
            from trendfactory.errors import ParamsError

            raise ParamsError(f"models.hybrid.lstm_hidden: got {c.lstm_hidden}, expected a multiple of models.hybrid.heads ({c.heads})")
        return HybridNet(n_features, c.conv_channels, c.kernel_size, c.lstm_hidden, c.heads, c.head_hidden, c.dropout)
