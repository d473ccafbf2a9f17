"""Neural: Autoformer -- an encoder of Auto-Correlation layers with series decomposition blocks;
the head reads the encoder's seasonal part plus the input's trend at the last bar.

Paper: Haixu Wu, Jiehui Xu, Jianmin Wang and Mingsheng Long (2021), "Autoformer: Decomposition
Transformers with Auto-Correlation for Long-Term Series Forecasting", NeurIPS 2021. Reference
implementation: github.com/thuml/Autoformer (``layers/AutoCorrelation.py``,
``layers/Autoformer_EncDec.py``, ``models/Autoformer.py``).

How this version maps to the paper:

- **Series decomposition block**: trend = moving average (kernel ``moving_avg``, odd, stride 1)
  of the series padded at both ends by repeating its first and last bar; seasonal = x - trend.
  The kernel is clamped to the window (to L, or L - 1 when L is even, so it stays odd).
  No look-ahead: the padding repeats bars of the window itself, so even the trend at the last bar
  averages only bars <= the last bar (the last (k+1)/2 bars, the last one (k-1)/2 more times).
  Inside the window a bar's trend does see later bars of the same window, but every one of them
  is at or before the sample's own bar, which is all the label is conditioned on.
- **Auto-Correlation** (replaces self-attention): per head and channel the autocorrelation
  R(tau) = IFFT(FFT(Q) * conj(FFT(K))) (Wiener-Khinchin; circular, over the window), averaged
  over heads and channels as in the reference; the top k = int(c * ln L) delays (c = ``factor``)
  are picked, their correlations softmaxed into weights, and the output is the weighted sum of
  the values rolled by each delay (time-delay aggregation: out[t] = sum_i w_i V[(t + tau_i) mod L]).
  Departure: the reference's training path picks the delays from the correlation averaged over
  the whole batch (its inference path picks them per sample); here both modes pick them per
  sample, so a window's output never depends on the other windows in its batch, and training
  and evaluation compute the same function.
- **Encoder layer**: x = decomp(x + AutoCorrelation(x)); x = decomp(x + FeedForward(x)) keeping
  the seasonal parts only (the encoder's job is the seasonal pattern), and the encoder ends in
  the reference's seasonal LayerNorm (LayerNorm, then minus its mean over time).
- **Embedding**: a Conv1d (kernel 3) token embedding and no positional encoding (the reference
  drops it too: Auto-Correlation is period-based, not position-based). The reference's
  calendar-stamp embedding is left out (the windows carry no time stamps). The reference pads
  the token convolution circularly; here it replicates the edge bars, so the last token does not
  see the window's first bar.
- **Left out: the decoder** (seasonal + trend-cyclical accumulation over a forecast horizon, with
  cross Auto-Correlation), which exists to produce multi-step forecasts. Here the task is to
  classify one window into down/flat/up per horizon. In the decoder the forecast is the sum of a
  seasonal part (from the encoder through cross-correlation) and a trend part (initialised from
  the input's trend); the head keeps that split: z = (encoder's seasonal output at the last bar)
  + W (input's trend at the last bar), a d_model vector for the TrendHead.
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
from trendfactory.params import DROPOUT, check, pos_field


def odd_kernel(kernel: int, length: int) -> int:
    """The moving-average kernel clamped to a window of ``length`` bars, kept odd."""
    return max(1, min(kernel, length if length % 2 else length - 1))


class SeriesDecomp(nn.Module):
    """x -> (seasonal, trend), both [B, L, C]: trend is a centred moving average with the ends
    padded by repeating the first / last bar (only bars of the window enter it)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: [B, L, C]
        B, L, C = x.shape
        k = odd_kernel(self.kernel, L)
        if k == 1:
            return torch.zeros_like(x), x
        pad = (k - 1) // 2
        padded = torch.cat([x[:, :1].expand(B, pad, C), x, x[:, -1:].expand(B, pad, C)], dim=1)  # [B, L + 2*pad, C]
        trend = nn.functional.avg_pool1d(padded.transpose(1, 2), k, stride=1).transpose(1, 2)  # [B, C, L] -> [B, L, C]
        return x - trend, trend


class AutoCorrelation(nn.Module):
    """Period-based dependencies and time-delay aggregation on projected heads.

    ``q``, ``k``, ``v``: [B, H, E, L] -> [B, H, E, L]; the delays are chosen per sample.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"

    def top_k(self, length: int) -> int:
        """k = int(c * ln L) delays, at least 1 and at most L."""
        return max(1, min(length, int(self.factor * math.log(length))))

    def correlation(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """R(tau) per head and channel: [B, H, E, L]; in float32 (FFTs have no bf16 kernels)."""
        L = q.shape[-1]
        spec = torch.fft.rfft(q.float(), dim=-1) * torch.conj(torch.fft.rfft(k.float(), dim=-1))  # [B, H, E, L//2+1]
        return torch.fft.irfft(spec, n=L, dim=-1)  # [B, H, E, L]: R(tau) = sum_t q[t + tau] k[t]

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, H, E, L = v.shape
        mean_corr = self.correlation(q, k).mean(dim=(1, 2))  # [B, L]: one correlation per delay and sample
        weights, delays = mean_corr.topk(self.top_k(L), dim=-1)  # [B, k] each: per sample, never over the batch
        weights = torch.softmax(weights, dim=-1)  # [B, k]
        # time-delay aggregation sum_i w_i Roll(V, tau_i), out[t] = sum_i w_i V[(t + tau_i) mod L],
        # as one circular correlation of V with the sparse delay-weight vector w (w[tau_i] = w_i,
        # 0 elsewhere): IFFT(FFT(V) * conj(FFT(w))). The same sum as k gathers of rolled V, but
        # one FFT pair instead of k gathers, multiplies and adds (forward and backward) on the CPU.
        w = torch.zeros(B, L, device=v.device, dtype=weights.dtype).scatter(1, delays, weights)  # [B, L]
        spec = torch.fft.rfft(v.float(), dim=-1) * torch.conj(torch.fft.rfft(w, dim=-1))[:, None, None, :]  # [B, H, E, L//2+1]
        return torch.fft.irfft(spec, n=L, dim=-1)  # [B, H, E, L]


class AutoCorrelationLayer(nn.Module):
    """Multi-head projections around :class:`AutoCorrelation`: [B, L, D] -> [B, L, D]."""

    def __init__(self, d_model: int, heads: int, factor: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.corr = AutoCorrelation(factor)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, D]
        B, L, D = x.shape
        H = self.heads

        def split(t):  # [B, L, D] -> [B, L, H, E] -> [B, H, E, L]: the FFT runs over the last axis
            return t.view(B, L, H, D // H).permute(0, 2, 3, 1)

        out = self.corr(split(self.q(x)), split(self.k(x)), split(self.v(x)))  # [B, H, E, L]
        return self.out(out.permute(0, 3, 1, 2).reshape(B, L, D).to(x.dtype))  # [B, L, H, E] -> [B, L, D]


class AutoformerEncoderLayer(nn.Module):
    """Auto-Correlation and feed-forward, each followed by a series decomposition that keeps the seasonal part."""

    def __init__(self, d_model: int, heads: int, factor: int, d_ff: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.attn = AutoCorrelationLayer(d_model, heads, factor)
        # the reference's kernel-1 convolutions without bias
        self.ff1, self.ff2 = nn.Linear(d_model, d_ff, bias=False), nn.Linear(d_ff, d_model, bias=False)
        self.decomp1, self.decomp2 = SeriesDecomp(kernel), SeriesDecomp(kernel)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, D]
        x, _ = self.decomp1(x + self.drop(self.attn(x)))  # seasonal part [B, L, D]
        y = self.drop(self.ff2(self.drop(nn.functional.gelu(self.ff1(x)))))
        x, _ = self.decomp2(x + y)
        return x  # [B, L, D]


class SeasonalLayerNorm(nn.Module):
    """The reference's ``my_Layernorm``: LayerNorm, then minus its mean over time (a seasonal part has no level)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, D]
        h = self.norm(x)
        return h - h.mean(dim=1, keepdim=True)


class AutoformerNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, d_model: int, heads: int, layers: int, factor: int, d_ff: int, moving_avg: int, dropout: float) -> None:
        super().__init__()
        kernel = odd_kernel(moving_avg, seq_len)
        self.decomp = SeriesDecomp(kernel)  # the input's trend, for the head
        self.token = nn.Conv1d(n_features, d_model, 3, padding=1, padding_mode="replicate")
        self.drop = Dropout(dropout)
        self.layers = nn.ModuleList(AutoformerEncoderLayer(d_model, heads, factor, d_ff, kernel, dropout) for _ in range(layers))
        self.norm = SeasonalLayerNorm(d_model)
        self.trend = nn.Linear(n_features, d_model)  # the trend-cyclical part, as the decoder's trend projection
        self.head = TrendHead(d_model)

    def forward(self, x: torch.Tensor):  # x: [B, L, F]
        _, trend = self.decomp(x)  # [B, L, F]
        h = self.drop(self.token(x.transpose(1, 2)).transpose(1, 2))  # [B, F, L] -> [B, D, L] -> [B, L, D]
        for layer in self.layers:
            h = layer(h)  # [B, L, D] seasonal
        seasonal = self.norm(h)[:, -1]  # [B, D] at the window's end row
        return self.head(seasonal + self.trend(trend[:, -1]))  # seasonal + trend-cyclical parts, [B, D]


@dataclass(frozen=True)
class AutoformerConfig:
    d_model: int = pos_field(32)
    heads: int = pos_field(4)
    layers: int = pos_field(2)
    # c: k = int(c * ln L) delays (the reference's scripts use 1 to 3)
    factor: int = pos_field(3)
    d_ff: int = pos_field(64)
    # moving-average kernel of the decomposition (bars); clamped to the window
    moving_avg: int = field(default=9, metadata=check(lambda v: v >= 3 and v % 2 == 1, "an odd integer >= 3"))
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "autoformer", kind="network", config=AutoformerConfig, needs_sequences=True, can_use_gpu=True)
class Autoformer(NeuralModel):
    """Autoformer encoder: Auto-Correlation + series decomposition; head on seasonal + trend at the last bar."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "d_model": Choice((16, 32, 64)),
        "layers": Int(1, 2),
        "dropout": Float(0.0, 0.5),
    }

    tiny_config: ClassVar[dict] = {"d_model": 16, "heads": 2, "layers": 2, "factor": 2, "d_ff": 32, "moving_avg": 5, "dropout": 0.05}

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        if c.d_model % c.heads:
            from trendfactory.errors import ParamsError

            raise ParamsError(f"models.autoformer.d_model: got {c.d_model}, expected a multiple of models.autoformer.heads ({c.heads})")
        return AutoformerNet(n_features, seq_len, c.d_model, c.heads, c.layers, c.factor, c.d_ff, c.moving_avg, c.dropout)
