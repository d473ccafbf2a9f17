"""Building blocks the networks share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from trendfactory.params import DROPOUT, pos_field


@dataclass(frozen=True)
class RNNConfig:
    """The section of a recurrent network (LSTM, GRU): its size only; training is `train`."""

    hidden: int = pos_field(64)
    layers: int = pos_field(1)
    dropout: float = field(default=0.1, metadata=DROPOUT)


class TrendHead(nn.Module):
    """The common output of every network: per horizon head, three class logits and a score in
    [-1, 1]. A network is built with one head; :class:`~trendfactory.models.common.neural.NeuralModel`
    widens it to one head per horizon of the window store (``with_heads``), so every horizon
    trains in one network."""

    def __init__(self, d_in: int, n_heads: int = 1) -> None:
        super().__init__()
        self.d_in, self.n_heads = d_in, n_heads
        self.proj = nn.Linear(d_in, 4 * n_heads)  # per head: 3 logits + 1 score

    def with_heads(self, n_heads: int) -> "TrendHead":
        """A fresh head of the same input width with ``n_heads`` outputs."""
        return TrendHead(self.d_in, n_heads)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # unflatten, not view(len(z), ...): a traced export keeps the batch size free
        out = self.proj(z).unflatten(1, (self.n_heads, 4))  # [B, 4H] -> [B, H, 4]
        return out[..., :3], torch.tanh(out[..., 3])  # logits [B, H, 3], score [B, H]


class Dropout(nn.Module):
    """Inverted dropout, as ``nn.Dropout``, with a cheaper mask on the CPU.

    On the 2-core CPU the mask is most of dropout's cost: ``nn.Dropout``'s ``bernoulli_`` took a
    third of the dual tower's training step, and even one byte per element from ``torch.randint``
    (Mersenne Twister) plus a uint8 compare and a bool multiply cost 3.2 of its 13 ms. Here the
    bytes come from numpy's SFC64 (``random_raw``: 8 bytes per 64-bit draw, ~0.2 ns a byte),
    the compare and the float mask are numpy passes, and one torch multiply applies it -- about
    4x less. The SFC64 stream is seeded per call by one draw from torch's global generator, so
    ``torch.manual_seed`` fixes the masks and a resumed run (which restores torch's RNG state)
    continues the same stream. On other devices it is ``nn.functional.dropout``.

    The drop rate is ``p`` rounded to a multiple of 1/256 (0.3 -> 0.3008) on every device, and
    kept activations are scaled by 1 / (1 - that rate). Identity in eval mode.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.threshold = int(round(p * 256))  # a byte below this drops the activation
        self.rate = self.threshold / 256
        self.scale = 1.0 / (1.0 - self.rate)

    def extra_repr(self) -> str:
        return f"p={self.rate:.4f}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.rate, True)
        n = x.numel()
        seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
        raw = np.random.SFC64(seed).random_raw((n + 7) // 8)  # [ceil(n / 8)] uint64
        keep = raw.view(np.uint8)[:n] >= self.threshold  # [n] bool
        mask = keep.view(np.uint8).astype(np.float32)  # [n] 0/1
        mask *= np.float32(self.scale)
        m = torch.from_numpy(mask).view(x.shape)  # [*x.shape]; a constant: backward is grad * m
        return x * (m if x.dtype == torch.float32 else m.to(x.dtype))


class RNNNet(nn.Module):
    """LSTM or GRU encoder (batch first) + head on the last time step."""

    def __init__(self, cell: type[nn.RNNBase], n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = cell(n_features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = Dropout(dropout)
        self.head = TrendHead(hidden)

    def forward(self, x):  # x: [B, L, F]
        out, _ = self.rnn(x)  # [B, L, H]
        return self.head(self.drop(out[:, -1]))  # [B, H] at the window's end row


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """[length, d_model] fixed positional encoding of Vaswani et al. (2017): sin on even
    channels, cos on odd ones, wavelengths from 2*pi to 10000*2*pi (Informer's and TimesNet's)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]  # [L, 1]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))  # [ceil(D/2)]
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
    return pe
