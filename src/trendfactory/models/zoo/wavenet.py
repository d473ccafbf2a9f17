"""Neural: WaveNet -- stacks of gated, dilated, causal 1-D convolutions with residual and skip
connections; the skip sum at the window's last bar feeds the head.

Paper: A. van den Oord, S. Dieleman, H. Zen, K. Simonyan, O. Vinyals, A. Graves, N. Kalchbrenner,
A. Senior, K. Kavukcuoglu (2016), "WaveNet: A Generative Model for Raw Audio" (arXiv:1609.03499).
Reference implementations: the paper published no code; a widely read one is
github.com/ibab/tensorflow-wavenet (this file is written from the paper, not from it).

How it maps to the paper (its section 2):

- causal dilated convolutions (2.1): every conv pads on the left only, so the output at bar t
  sees bars <= t; dilations double layer by layer (default 1, 2, 4, 8, 16), so with the paper's
  kernel size 2 the receptive field is 1 + (k - 1) * sum(dilations) = 32 bars, one full default
  window (30). A list such as (1, 2, 4, 1, 2, 4) repeats the stack, as the paper's blocks do.
- gated activation unit (2.3): z = tanh(W_f * x) * sigmoid(W_g * x); the filter and the gate
  are one conv with 2C output channels, split in two.
- residual and skip connections (2.4): each layer adds a 1x1 conv of z to its input (residual)
  and sends another 1x1 conv of z to the skip sum; the output is
  ReLU -> 1x1 -> ReLU -> (here) the TrendHead, taken from the skip sum at the last bar.

Left out / changed, because the task is classifying one window (down / flat / up per horizon),
not generating audio sample by sample: the mu-law quantisation and 256-way softmax over the
next sample (replaced by the TrendHead), global and local conditioning (2.5), and the initial
causal conv (a 1x1 projection of the features is used instead: it is trivially causal and the
first dilated layer already looks one bar back). Dropout after each gated unit is an addition
(the paper mentions none). Since only the last bar's skip output is used, the 1x1 skip convs
are applied to that bar alone: the same result as computing them everywhere and slicing, for a
fraction of the work.
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
from trendfactory.params import DROPOUT, POS_LIST, check, pos_field


def receptive_field(kernel_size: int, dilations: tuple[int, ...]) -> int:
    """Bars the last output sees: 1 + (k - 1) * sum(dilations)."""
    return 1 + (kernel_size - 1) * sum(dilations)


class GatedResidualLayer(nn.Module):
    """One WaveNet layer: dilated causal conv -> tanh * sigmoid gate -> residual and skip 1x1s."""

    def __init__(self, channels: int, skip_channels: int, kernel: int, dilation: int, dropout: float, residual: bool = True) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation  # left padding only: output t sees inputs <= t
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation)  # filter and gate together
        self.drop = Dropout(dropout)
        # the last layer's residual output would feed no one: it has none (no unused weights)
        self.residual = nn.Conv1d(channels, channels, 1) if residual else None
        self.skip = nn.Linear(channels, skip_channels)  # a 1x1 conv, applied at the last bar only

    def forward(self, x):  # x: [B, C, L]
        f, g = self.conv(nn.functional.pad(x, (self.pad, 0))).chunk(2, dim=1)  # [B, 2C, L] -> 2 x [B, C, L]
        z = self.drop(torch.tanh(f) * torch.sigmoid(g))  # [B, C, L]
        skip = self.skip(z[:, :, -1])  # [B, S]: the last bar's skip output
        return (x + self.residual(z) if self.residual is not None else None), skip  # [B, C, L] (or None), [B, S]


class WaveNetNet(nn.Module):
    def __init__(self, n_features: int, channels: int, skip_channels: int, kernel: int, dilations: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.receptive_field = receptive_field(kernel, dilations)
        self.inp = nn.Conv1d(n_features, channels, 1)  # features -> residual channels, per bar
        n = len(dilations)
        self.layers = nn.ModuleList(GatedResidualLayer(channels, skip_channels, kernel, d, dropout, residual=i < n - 1) for i, d in enumerate(dilations))
        self.out = nn.Linear(skip_channels, skip_channels)  # the paper's 1x1 conv after the skip sum
        self.head = TrendHead(skip_channels)

    def forward(self, x):  # x: [B, L, F]
        h = self.inp(x.transpose(1, 2))  # [B, F, L] -> [B, C, L]
        skips = 0
        for layer in self.layers:
            h, s = layer(h)  # [B, C, L] (None after the last layer), [B, S]
            skips = skips + s  # skip connections summed across layers
        z = torch.relu(self.out(torch.relu(skips)))  # [B, S]
        return self.head(z)


@dataclass(frozen=True)
class WaveNetConfig:
    channels: int = pos_field(32)  # residual channels
    skip_channels: int = pos_field(32)
    kernel_size: int = field(default=2, metadata=check(lambda v: v >= 2, "an integer >= 2"))
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8, 16), metadata=POS_LIST)
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "wavenet", kind="network", config=WaveNetConfig, needs_sequences=True, can_use_gpu=True)
class WaveNet(NeuralModel):
    """WaveNet: gated dilated causal convolutions, residual + skip connections; head on the last bar's skip sum."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "channels": Choice((16, 32, 64)),
        "dropout": Float(0.0, 0.5),
    }

    tiny_config: ClassVar[dict] = {"channels": 12, "skip_channels": 12, "kernel_size": 2, "dilations": [1, 2, 4, 8]}

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return WaveNetNet(n_features, c.channels, c.skip_channels, c.kernel_size, tuple(c.dilations), c.dropout)
