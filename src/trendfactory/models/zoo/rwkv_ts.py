"""Neural: RWKV-TS -- linear-attention recurrent (RWKV-4) blocks over patch tokens; the last
token (which holds the window's end bar) feeds the head.

Papers: Haowen Hou, F. Richard Yu (2024), "RWKV-TS: Beyond Traditional Recurrent Neural Network
for Time Series Tasks" (arXiv:2401.09093), built on Bo Peng et al. (2023), "RWKV: Reinventing
RNNs for the Transformer Era" (Findings of EMNLP 2023). Reference implementations:
github.com/howard-hou/RWKV-TS (the time-series model) and github.com/BlinkDL/RWKV-LM (RWKV-4).

How this version maps to the core mechanism:

- **Patching** (RWKV-TS): the window of L bars x F features is cut into T = ceil(L / patch_len)
  non-overlapping patches of consecutive bars (zero bars padded at the start so the last patch
  ends at the window's end bar); each patch's patch_len * F values are one token, embedded by a
  Linear to d_model, plus a learned position embedding (RWKV-TS's DataEmbedding adds positions
  too). As in RWKV-TS's classification model, all features are patched together (its
  forecasting models are channel-independent; with ~60 features that would cost 60x here).
- **Time mixing**: token shift -- each projection reads mu * x_t + (1 - mu) * x_{t-1} with learned
  per-channel mu -- then receptance r, key k and value v, and the WKV operator with a learned
  per-channel decay w > 0 and bonus u:
  ``wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{-(t-1-i) w + k_i} + e^{u + k_t})``,
  output ``W_o (sigmoid(r_t) * wkv_t)``. WKV runs as RWKV-4's numerically stable recurrence (as
  in its CUDA kernel): the numerator and denominator sums are kept scaled by e^{-p}, p the running
  maximum exponent, so no exponential overflows. Causal: token t only reads tokens <= t.
- **Channel mixing**: token shift, then ``sigmoid(W_r x_r) * W_v relu(W_k x_k)^2`` (squared ReLU).
- Pre-LayerNorm residual blocks (LN0 on the embeddings, LN before each mix, LN on the output),
  with RWKV-4's channel-graded initialisation of mu, decay and bonus.
- **Output**: the head reads the last token (the window's end bar) instead of RWKV-TS's
  flattened all-token head, as every network here does.

Differences: the RWKV-TS repository's code uses RWKV's later multi-head "x051a" operator
(matrix-valued state per head, group norm, an extra SiLU gate); this file follows the paper's
RWKV-4 formulation (per-channel WKV) instead. Instance normalisation (RevIN) is left out: the
features are already scaled, and the task is classification of one window, not forecasting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float, Int
from trendfactory.params import DROPOUT, pos_field

#: the running maximum exponent before any token: exp(NEG - p) is 0 for every finite p
NEG = -1e38


def neg_start(dtype: torch.dtype) -> float:
    """The exponent offset before any token, in ``dtype``: NEG where it is representable
    (float32, float64, bfloat16: the value the fp32/CPU results were made with, so they are
    unchanged), else the dtype's most negative finite value (float16: -65504; -1e38 overflows
    it and ``torch.full`` refuses). Either way exp(start - q) is exactly 0 for the first token
    (start - q <= start, or -inf once it rounds past the dtype's range), and the first token's
    own exponent replaces it after one step."""
    return max(NEG, torch.finfo(dtype).min)


def wkv(decay: torch.Tensor, bonus: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RWKV-4's WKV operator as a numerically stable recurrence over time.

    decay: [D] w > 0 (per step the past fades by e^{-w}); bonus: [D] u (extra weight of the
    current token); k, v: [B, T, D]. Returns [B, T, D]:
    wkv_t = (sum_{i<t} e^{-(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (same sums without v).

    The state after token t is (a, b, p): a = sum_{i<=t} e^{-(t-i)w + k_i - p} v_i, b the same
    without v, p the largest exponent seen (so a and b stay O(1) whatever the size of k)."""
    B, T, D = k.shape
    a = torch.zeros(B, D, dtype=k.dtype, device=k.device)  # [B, D] scaled numerator state
    b = torch.zeros(B, D, dtype=k.dtype, device=k.device)  # [B, D] scaled denominator state
    p = torch.full((B, D), neg_start(k.dtype), dtype=k.dtype, device=k.device)  # [B, D] their exponent offset
    out = []
    for t in range(T):
        kt, vt = k[:, t], v[:, t]  # [B, D]
        # output: the state (exponent p) plus the current token with its bonus (exponent u + k_t)
        now = bonus + kt
        q = torch.maximum(p, now)
        e_state, e_now = torch.exp(p - q), torch.exp(now - q)
        out.append((e_state * a + e_now * vt) / (e_state * b + e_now))
        # update: decay the state one step (exponent p - w), add the current token (exponent k_t)
        faded = p - decay
        q = torch.maximum(faded, kt)
        e_state, e_now = torch.exp(faded - q), torch.exp(kt - q)
        a = e_state * a + e_now * vt
        b = e_state * b + e_now
        p = q
    return torch.stack(out, dim=1)  # [B, T, D]


def shift(x: torch.Tensor) -> torch.Tensor:
    """x_{t-1} for every token (zeros before the first): [B, T, D] -> [B, T, D]."""
    return nn.functional.pad(x, (0, 0, 1, -1))


class TimeMix(nn.Module):
    """Token shift, receptance/key/value, WKV with per-channel decay and bonus, output projection."""

    def __init__(self, d: int, layer: int, n_layers: int) -> None:
        super().__init__()
        # RWKV-4's initialisation: lower layers and lower channels lean more on the previous token,
        # and decays are spread over channels from long memory (e^-5 per step) to almost none (e^3)
        ratio_0_to_1 = layer / max(n_layers - 1, 1)
        ratio_1_to_0 = 1.0 - layer / n_layers
        ch = torch.arange(d, dtype=torch.float32)
        frac = ch / d  # [D] 0 .. (D-1)/D
        self.decay = nn.Parameter(-5 + 8 * (ch / max(d - 1, 1)) ** (0.7 + 1.3 * ratio_0_to_1))  # w = exp(decay)
        zigzag = ((ch + 1) % 3 - 1) * 0.5
        self.bonus = nn.Parameter(torch.full((d,), math.log(0.3)) + zigzag)  # u
        self.mix_k = nn.Parameter(frac**ratio_1_to_0)
        self.mix_v = nn.Parameter(frac**ratio_1_to_0 + 0.3 * ratio_0_to_1)
        self.mix_r = nn.Parameter(frac ** (0.5 * ratio_1_to_0))
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, D]
        prev = shift(x)  # [B, T, D]
        k = self.key(x * self.mix_k + prev * (1 - self.mix_k))
        v = self.value(x * self.mix_v + prev * (1 - self.mix_v))
        r = self.receptance(x * self.mix_r + prev * (1 - self.mix_r))
        y = wkv(torch.exp(self.decay), self.bonus, k, v)  # [B, T, D]
        return self.output(torch.sigmoid(r) * y)


class ChannelMix(nn.Module):
    """Token shift, then sigmoid(receptance) * value(relu(key)^2)."""

    def __init__(self, d: int, hidden: int, layer: int, n_layers: int) -> None:
        super().__init__()
        ratio_1_to_0 = 1.0 - layer / n_layers
        frac = torch.arange(d, dtype=torch.float32) / d
        self.mix_k = nn.Parameter(frac**ratio_1_to_0)
        self.mix_r = nn.Parameter(frac**ratio_1_to_0)
        self.key = nn.Linear(d, hidden, bias=False)
        self.value = nn.Linear(hidden, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, D]
        prev = shift(x)
        k = torch.relu(self.key(x * self.mix_k + prev * (1 - self.mix_k))) ** 2  # [B, T, hidden]
        r = torch.sigmoid(self.receptance(x * self.mix_r + prev * (1 - self.mix_r)))  # [B, T, D]
        return r * self.value(k)


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + TimeMix(LN(x)), then + ChannelMix(LN(x))."""

    def __init__(self, d: int, hidden: int, layer: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = TimeMix(d, layer, n_layers)
        self.ffn = ChannelMix(d, hidden, layer, n_layers)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, D]
        x = x + self.drop(self.att(self.ln1(x)))
        return x + self.drop(self.ffn(self.ln2(x)))


class RWKVTSNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, patch_len: int, d: int, layers: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.patch = min(patch_len, seq_len)
        self.n_tokens = -(-seq_len // self.patch)
        self.lead = self.n_tokens * self.patch - seq_len  # zero bars padded at the start
        self.embed = nn.Linear(self.patch * n_features, d)
        self.pos = nn.Parameter(torch.zeros(1, self.n_tokens, d))
        nn.init.normal_(self.pos, std=0.02)
        self.ln0 = nn.LayerNorm(d)
        self.drop = Dropout(dropout)
        self.blocks = nn.Sequential(*(Block(d, ffn_mult * d, i, layers, dropout) for i in range(layers)))
        self.ln_out = nn.LayerNorm(d)
        self.head = TrendHead(d)

    def forward(self, x):  # x: [B, L, F]
        B, L, F = x.shape
        if self.lead:
            x = nn.functional.pad(x, (0, 0, self.lead, 0))  # [B, T*patch, F]
        tokens = x.reshape(B, self.n_tokens, self.patch * F)  # [B, T, patch*F]: consecutive bars per token
        h = self.drop(self.ln0(self.embed(tokens) + self.pos))  # [B, T, D]
        h = self.blocks(h)  # [B, T, D]: causal over tokens
        return self.head(self.ln_out(h[:, -1]))  # the token ending at the window's end row


@dataclass(frozen=True)
class RWKVTSConfig:
    patch_len: int = pos_field(5)  # bars per token (clamped to the window); 1 = one token per bar
    d_model: int = pos_field(64)
    layers: int = pos_field(2)
    ffn_mult: int = pos_field(4)  # channel-mix width = ffn_mult * d_model
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "rwkv_ts", kind="network", config=RWKVTSConfig, needs_sequences=True, can_use_gpu=True)
class RWKVTS(NeuralModel):
    """RWKV-TS: RWKV-4 linear-attention recurrent blocks over patch tokens; head on the last token."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "d_model": Choice((32, 64, 128)),
        "layers": Int(1, 3),
        "dropout": Float(0.0, 0.5),
    }

    tiny_config: ClassVar[dict] = {"patch_len": 4, "d_model": 16, "layers": 1, "ffn_mult": 2}

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return RWKVTSNet(n_features, seq_len, c.patch_len, c.d_model, c.layers, c.ffn_mult, c.dropout)
