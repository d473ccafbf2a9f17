"""Neural: a GRU over the window; the last step's hidden state feeds the head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from trendfactory.models.common.layers import RNNConfig, RNNNet
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float, Int


@dataclass(frozen=True)
class GRUConfig(RNNConfig):
    pass


@register("neural", "gru", kind="network", config=GRUConfig, needs_sequences=True, can_use_gpu=True)
class GRU(NeuralModel):
    """GRU over the window, head on the last step."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "hidden": Choice((32, 64, 128)),
        "layers": Int(1, 2),
        "dropout": Float(0.0, 0.5),
    }

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return RNNNet(nn.GRU, n_features, c.hidden, c.layers, c.dropout)
