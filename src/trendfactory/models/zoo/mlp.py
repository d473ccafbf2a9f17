"""Neural: a multilayer perceptron on the last row of each window plus lagged copies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float
from trendfactory.params import DROPOUT, LAGS, POS_LIST


class MLPNet(nn.Module):
    def __init__(self, d_in: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.LayerNorm(h), nn.GELU(), Dropout(dropout)]
            d_in = h
        self.body = nn.Sequential(*layers)
        self.head = TrendHead(d_in)

    def forward(self, x):  # x: [B, F*(1+lags)]
        return self.head(self.body(x))


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = field(default=(256, 128), metadata=POS_LIST)
    dropout: float = field(default=0.2, metadata=DROPOUT)
    lags: tuple[int, ...] = field(default=(1, 5), metadata=LAGS)


@register("neural", "mlp", kind="network", config=MLPConfig, can_use_gpu=True)
class MLP(NeuralModel):
    """MLP (LayerNorm, GELU, dropout) on the last row plus lagged rows."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "hidden": Choice(((128,), (256, 128), (512, 256))),
        "dropout": Float(0.0, 0.5),
    }

    input_kind = "tabular"

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return MLPNet(n_features * (1 + len(c.lags)), tuple(c.hidden), c.dropout)
