"""Neural: a temporal convolutional network -- dilated causal convolutions in residual blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float, Int
from trendfactory.params import DROPOUT, POS_LIST, check, pos_field


class CausalBlock(nn.Module):
    """Two dilated causal convs (left padding only: output t sees inputs <= t) + residual."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, dilation=dilation)
        self.drop = Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):  # x: [B, C, L]
        h = self.drop(torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0)))))
        h = self.drop(torch.relu(self.conv2(nn.functional.pad(h, (self.pad, 0)))))
        return torch.relu(h + self.skip(x))  # [B, C_out, L]


class TCNNet(nn.Module):
    def __init__(self, n_features: int, channels: int, kernel: int, dilations: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        blocks, c_in = [], n_features
        for d in dilations:
            blocks.append(CausalBlock(c_in, channels, kernel, d, dropout))
            c_in = channels
        self.blocks = nn.Sequential(*blocks)
        self.head = TrendHead(channels)

    def forward(self, x):  # x: [B, L, F]
        h = self.blocks(x.transpose(1, 2))  # [B, F, L] -> [B, C, L]
        return self.head(h[:, :, -1])  # [B, C] at the window's end row


@dataclass(frozen=True)
class TCNConfig:
    channels: int = pos_field(32)
    kernel_size: int = field(default=3, metadata=check(lambda v: v >= 2, "an integer >= 2"))
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8), metadata=POS_LIST)
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "tcn", kind="network", config=TCNConfig, needs_sequences=True, can_use_gpu=True)
class TCN(NeuralModel):
    """Dilated causal convolutions with residual blocks; head on the last step."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "channels": Choice((16, 32, 64)),
        "kernel_size": Int(2, 4),
        "dropout": Float(0.0, 0.5),
    }

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return TCNNet(n_features, c.channels, c.kernel_size, tuple(c.dilations), c.dropout)
