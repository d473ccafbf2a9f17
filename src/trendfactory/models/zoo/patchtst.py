"""Neural: PatchTST -- each feature's series, instance-normalised and cut into overlapping
patches, is encoded on its own by one shared Transformer encoder; the channels meet only in
the layer that feeds the head.

Paper: Y. Nie, N. H. Nguyen, P. Sinthong, J. Kalagnanam (ICLR 2023), "A Time Series is Worth 64
Words: Long-term Forecasting with Transformers" (arXiv:2211.14730).
Reference implementation: github.com/yuqinie98/PatchTST (PatchTST_supervised).

How it maps to the paper's core mechanism (its section 3.1):

- channel independence: x [B, L, F] becomes B*F univariate series [B*F, L]; every series goes
  through the same patch embedding, positional embedding and encoder weights, and no attention
  runs across features. ``PatchTSTNet.encode`` returns that per-channel output, [B, F, N, D].
- instance normalisation (RevIN, Kim et al. 2022): each series is shifted by its mean over the
  window and divided by its standard deviation before patching (no learnable affine, the
  reference's default).
- patching: patch_len P bars, stride S; the series is padded at its end with S copies of its last
  value (the reference's ``padding_patch='end'``) so that N = (L - P) // S + 2 patches and the
  last bar always falls in the last patch. P and S are clamped to the window (S <= P <= L).
- each patch is embedded by a linear map P -> D plus a learned positional embedding, and the
  tokens [B*F, N, D] go through the Transformer encoder.

Changed, because the task is classifying one window (down / flat / up per horizon), not
forecasting each channel's next T values:

- the paper's forecasting head (flatten a channel's N*D outputs, one linear map to the T future
  values, then RevIN denormalisation) is replaced by the classification head here: a channel's
  flattened N*D outputs go through one linear map shared by every channel (as the paper's flatten
  head is) to ``channel_dim`` values; these, with the channel's RevIN mean and log std (the
  level and scale the paper restores by denormalising its forecast; a classifier has no forecast
  to denormalise, so it gets them as inputs), are concatenated over the F channels and mixed by
  one layer of width ``channel_mix`` into z for the TrendHead. This is the only place where
  features meet.
- the reference encoder uses BatchNorm (post-norm); a sample's output here must not depend on
  the rest of its batch, so it uses LayerNorm (pre-norm, with a final LayerNorm); the
  reference's residual attention (scores carried from layer to layer) is left out. The layer
  (``ChannelEncoderLayer``) is the standard pre-norm Transformer layer, written out so that its
  attention is one ``scaled_dot_product_attention`` call: over B*F sequences of a handful of
  tokens, torch's ``nn.TransformerEncoderLayer`` spends most of its time in per-sequence
  ``bmm`` calls and attention-weight dropout masks, and this layer trains ~1.8x faster on the
  CPU. As in the reference's default (``attn_dropout=0``), the attention weights are not
  dropped; dropout acts on the two residual branches and inside the feed-forward block.
- the self-supervised masked-patch pre-training of the paper (section 3.2) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F_
from torch import nn

from trendfactory import portable_math as pmath
from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float
from trendfactory.params import DROPOUT, pos_field

EPS = 1e-5  # RevIN's variance floor: a constant series normalises to zeros, not NaN


def patch_layout(seq_len: int, patch_len: int, stride: int) -> tuple[int, int, int]:
    """(patch length, stride, number of patches) for a window of ``seq_len`` bars, the sizes
    clamped to the window, the series padded at its end by ``stride`` copies of its last bar."""
    p = min(patch_len, seq_len)
    s = min(stride, p)
    return p, s, (seq_len + s - p) // s + 1


class ChannelEncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer: x + Drop(MHA(LN(x))), then x + Drop(FF(LN(x)))."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop_attn = Dropout(dropout)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), Dropout(dropout), nn.Linear(ff, d_model))
        self.drop_ff = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [S, N, D], S sequences of N tokens
        S, N, D = x.shape
        # [S, N, 3D] -> [S, N, 3, H, D/H] -> three [S, H, N, D/H]
        q, k, v = self.qkv(self.norm_attn(x)).view(S, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = F_.scaled_dot_product_attention(q, k, v)  # [S, H, N, D/H]; no mask: a window's patches all precede its end
        x = x + self.drop_attn(self.out(attn.transpose(1, 2).reshape(S, N, D)))  # heads back to [S, N, D]
        return x + self.drop_ff(self.ff(self.norm_ff(x)))


class PatchTSTNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, patch_len: int, stride: int, d_model: int, heads: int, layers: int, ff: int, channel_dim: int, channel_mix: int, dropout: float) -> None:
        super().__init__()
        self.patch, self.stride, self.n_patches = patch_layout(seq_len, patch_len, stride)
        self.embed = nn.Linear(self.patch, d_model)  # one patch of one channel -> one token
        self.pos = nn.Parameter(torch.empty(1, self.n_patches, d_model))
        nn.init.uniform_(self.pos, -0.02, 0.02)
        self.drop = Dropout(dropout)
        self.encoder = nn.Sequential(*(ChannelEncoderLayer(d_model, heads, ff, dropout) for _ in range(layers)))
        self.norm = nn.LayerNorm(d_model)
        # the paper's flatten head, shared by the channels, to channel_dim values instead of a forecast
        self.flatten_head = nn.Linear(self.n_patches * d_model, channel_dim)
        # the only layer that sees several channels: per channel channel_dim values + mean + log std
        self.mix = nn.Sequential(nn.Linear(n_features * (channel_dim + 2), channel_mix), nn.GELU(), Dropout(dropout))
        self.head = TrendHead(channel_mix)

    def encode(self, x):
        """Channel-independent part: x [B, L, F] -> encoder outputs [B, F, N, D], and each
        channel's RevIN mean and std [B, F] (feature j's outputs depend on feature j only)."""
        B, L, F = x.shape
        series = x.transpose(1, 2).reshape(B * F, L)  # [B*F, L]: one univariate series per (sample, feature)
        mean = series.mean(1, keepdim=True)  # [B*F, 1]
        std = pmath.sqrt(series.var(1, keepdim=True, unbiased=False) + EPS)  # [B*F, 1]
        series = (series - mean) / std
        series = torch.cat([series, series[:, -1:].expand(B * F, self.stride)], dim=1)  # [B*F, L+S]: pad the end
        patches = series.unfold(1, self.patch, self.stride)  # [B*F, N, P]
        h = self.encoder(self.drop(self.embed(patches) + self.pos))  # [B*F, N, D]
        h = self.norm(h).reshape(B, F, self.n_patches, -1)  # [B, F, N, D]
        return h, mean.view(B, F), std.view(B, F)

    def forward(self, x):  # x: [B, L, F]
        h, mean, std = self.encode(x)
        per_channel = self.flatten_head(h.flatten(2))  # [B, F, N*D] -> [B, F, channel_dim]
        stats = torch.stack([mean, pmath.log(std)], dim=2)  # [B, F, 2]
        z = self.mix(torch.cat([per_channel, stats], dim=2).flatten(1))  # [B, F*(channel_dim+2)] -> [B, channel_mix]
        return self.head(z)


@dataclass(frozen=True)
class PatchTSTConfig:
    patch_len: int = pos_field(6)  # bars per patch
    # bars between patch starts (< patch_len: overlapping patches, as the paper's P/2). The default
    # is non-overlapping: every feature is its own sequence, so the encoder sees B*F sequences and
    # overlapping patches (stride 3: 10 tokens instead of 6 at L = 30) cost ~1.7x the CPU time.
    stride: int = pos_field(6)
    # small, for the same reason: with F ~ 60 features the encoder runs 60x the tokens of the
    # plain transformer (d_model 32 / stride 3 took ~10x the CPU budget of one fit)
    d_model: int = pos_field(16)
    heads: int = pos_field(2)
    layers: int = pos_field(1)
    ff: int = pos_field(32)
    channel_dim: int = pos_field(8)  # per-channel summary width (the flatten head's output)
    channel_mix: int = pos_field(64)  # width of the channel-mixing layer (z)
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "patchtst", kind="network", config=PatchTSTConfig, needs_sequences=True, can_use_gpu=True)
class PatchTST(NeuralModel):
    """PatchTST: channel-independent patch Transformer with RevIN; channels mixed only before the head."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "d_model": Choice((8, 16, 32)),
        "dropout": Float(0.0, 0.5),
    }

    tiny_config: ClassVar[dict] = {"patch_len": 6, "stride": 3, "d_model": 16, "heads": 2, "layers": 1, "ff": 32, "channel_dim": 4, "channel_mix": 32}

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        if c.d_model % c.heads:
            from trendfactory.errors import ParamsError

            raise ParamsError(f"models.patchtst.d_model: got {c.d_model}, expected a multiple of models.patchtst.heads ({c.heads})")
        return PatchTSTNet(n_features, seq_len, c.patch_len, c.stride, c.d_model, c.heads, c.layers, c.ff, c.channel_dim, c.channel_mix, c.dropout)
