"""Neural: a transformer encoder over patch tokens (or one token per bar) with learned
positional embeddings; the last token (which holds the window's end row) feeds the head."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float, Int
from trendfactory.params import DROPOUT, pos_field


class TransformerNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, d_model: int, heads: int, layers: int, ff: int, patch_len: int, dropout: float) -> None:
        super().__init__()
        self.patch = min(patch_len, seq_len)
        self.n_tokens = -(-seq_len // self.patch)
        self.lead = self.n_tokens * self.patch - seq_len  # zero bars padded at the start
        self.embed = nn.Linear(self.patch * n_features, d_model)
        self.pos = nn.Parameter(torch.zeros(1, self.n_tokens, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = TrendHead(d_model)

    def forward(self, x):  # x: [B, L, F]
        B, L, F = x.shape
        if self.lead:
            x = nn.functional.pad(x, (0, 0, self.lead, 0))  # [B, n_tokens*patch, F]
        tokens = x.reshape(B, self.n_tokens, self.patch * F)  # [B, T, patch*F]: consecutive bars per token
        h = self.encoder(self.embed(tokens) + self.pos)  # [B, T, D]
        return self.head(self.norm(h[:, -1]))  # the token ending at the window's end row


@dataclass(frozen=True)
class TransformerConfig:
    d_model: int = pos_field(32)
    heads: int = pos_field(4)
    layers: int = pos_field(2)
    ff: int = pos_field(64)
    patch_len: int = pos_field(5)  # bars per token; 1 = one token per bar
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "transformer", kind="network", config=TransformerConfig, needs_sequences=True, can_use_gpu=True)
class Transformer(NeuralModel):
    """Transformer encoder on patch tokens with learned positions; head on the last token."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "d_model": Choice((16, 32, 64)),
        "layers": Int(1, 3),
        "patch_len": Choice((3, 5, 10)),
        "dropout": Float(0.0, 0.5),
    }

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        if c.d_model % c.heads:
            from trendfactory.errors import ParamsError

            raise ParamsError(f"models.transformer.d_model: got {c.d_model}, expected a multiple of models.transformer.heads ({c.heads})")
        return TransformerNet(n_features, seq_len, c.d_model, c.heads, c.layers, c.ff, c.patch_len, c.dropout)
