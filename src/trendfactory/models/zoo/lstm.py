"""Neural: an LSTM over the window; the last step's hidden state feeds the head."""

from __future__ import annotations

from torch import nn

from trendfactory.models.common.neural import NeuralModel
from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.registry import register


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


@register("neural", "lstm", needs_sequences=True, can_use_gpu=True)
class LSTM(NeuralModel):
    """LSTM over the window, head on the last step."""

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return RNNNet(nn.LSTM, n_features, c.hidden, c.layers, c.dropout)
