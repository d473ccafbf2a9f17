"""Neural: TimesNet -- the embedded window is folded into 2-D tables along its dominant periods
(found by an FFT), 2-D inception convolutions model the variation within and across periods,
and the results are unfolded and mixed by the periods' amplitudes.

Paper: H. Wu, T. Hu, Y. Liu, H. Zhou, J. Wang, M. Long (ICLR 2023), "TimesNet: Temporal
2D-Variation Modeling for General Time Series Analysis" (arXiv:2210.02186).
Reference implementation: github.com/thuml/Time-Series-Library (models/TimesNet.py,
layers/Conv_Blocks.py).

How it maps to the paper (its section 3, one TimesBlock per layer):

- embedding: a kernel-3 convolution over the bars (the reference's TokenEmbedding, zero instead of
  circular padding: wrapping the window's last bar round to its first is meaningless here) plus
  fixed sinusoidal positions, then dropout. The reference's calendar embedding is left out (the
  network sees no timestamps).
- period discovery (eq. 1): A = |rfft(x)| over time, averaged over the d channels; the k largest
  amplitudes (frequency 0, the mean, excluded) give frequencies f_i and periods p_i = L // f_i.
- 1-D -> 2-D (eq. 2): for each period the series [L, d] is zero-padded at its end to a multiple
  of p and folded to [d, L/p, p]: a column is one phase of the period, a row one cycle.
- 2-D variation (eq. 3): a parameter-efficient inception block -- 2-D convs of kernel sizes 1, 3,
  ..., 2K-1 averaged -- then GELU and a second inception block (d -> d_ff -> d), unfolded back to
  [L, d] and truncated to L.
- adaptive aggregation (eq. 4-5): the k results are summed with weights softmax(A_f1..A_fk),
  plus the residual input; a LayerNorm follows each block (as in the reference).
- output: GELU, dropout and the flattened [L*d] sequence (the reference's classification
  projection), here into the TrendHead.

One deliberate difference from the reference: the reference picks the k periods from amplitudes
averaged over the whole batch, so a sample's output depends on the other samples in its batch
(and on the batch size). Here each sample picks its own k periods from its own spectrum: for each
distinct period present in the batch, the samples that chose it are gathered, folded, convolved
and scattered back with their own weights. Each sample is still convolved k times, as in the
reference; the loop runs over at most the distinct periods (<= 9 for L = 30). Two frequencies
of one sample that give the same period add their weights (the same fold, convolved once).
The inception block is computed as a single conv whose kernel is the average of the K kernels
zero-padded to the largest size: a conv is linear in its kernel, so the result is the same as
averaging K convs, with one conv instead of K (the K kernels stay the parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from trendfactory.models.common.layers import Dropout, TrendHead, sinusoidal_encoding
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float, Int
from trendfactory.params import DROPOUT, pos_field


class Inception2d(nn.Module):
    """The mean of ``num_kernels`` same-size 2-D convs with kernel sizes 1, 3, ..., 2K-1."""

    def __init__(self, c_in: int, c_out: int, num_kernels: int) -> None:
        super().__init__()
        self.kernels = nn.ModuleList(nn.Conv2d(c_in, c_out, 2 * i + 1) for i in range(num_kernels))
        for conv in self.kernels:  # the reference's initialisation
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        self.pad = num_kernels - 1  # half the largest kernel: output size = input size

    def forward(self, x):  # x: [b, C_in, rows, p]
        # one conv with the averaged kernel, each kernel zero-padded to the largest, centred
        weight = sum(nn.functional.pad(c.weight, [self.pad - i] * 4) for i, c in enumerate(self.kernels)) / len(self.kernels)
        bias = sum(c.bias for c in self.kernels) / len(self.kernels)
        return nn.functional.conv2d(x, weight, bias, padding=self.pad)  # [b, C_out, rows, p]


def top_periods(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's k strongest periods and their amplitude weights: x [B, L, d] ->
    periods [B, k] (integers in [2, L]), softmax weights [B, k]. Per sample, never over the batch."""
    L = x.shape[1]
    amp = torch.fft.rfft(x.float(), dim=1).abs().mean(-1)[:, 1:]  # [B, L//2]: frequencies 1..L//2 (0 dropped)
    top_amp, idx = torch.topk(amp, k, dim=1)  # [B, k]
    return L // (idx + 1), torch.softmax(top_amp, dim=1)


def period_groups(periods: torch.Tensor, L: int) -> list[tuple[int, torch.Tensor]]:
    """For each distinct period in ``periods`` [B, k] (integers in [0, L]), ascending: (p, idx),
    idx [b] the samples (ascending) with p among their k periods -- exactly what
    ``torch.unique(periods).tolist()`` and ``(periods == p).any(1).nonzero()`` give, with one
    device-to-host transfer in all (per TimesBlock per forward) instead of one per period plus
    one for the list.

    That one transfer is inherent to the algorithm: a period sets the shape of its fold
    ([b, d, ceil(L/p), p]) and b, the number of samples that chose it, the batch of its
    convolution, so the host must know which periods occur and how often before it can launch
    them. It reads the L + 1 per-period counts (a [L + 1] integer tensor) once per forward; the
    sample indices are found on the device (a stable sort puts each period's samples first, in
    ascending order). On the CPU the indices are the same integers in the same order, so every
    result is bit-identical to the unique/nonzero loop (tests/models/test_timesnet.py)."""
    B = periods.shape[0]
    if periods.numel() == 0:
        return []
    member = torch.zeros(B, L + 1, dtype=torch.bool, device=periods.device).scatter_(1, periods, True)  # [B, L+1]: b has period p
    counts = member.sum(0).tolist()  # [L+1] the forward's one device-to-host transfer (see above)
    # per period p (a row), the samples that chose it first, ascending: a stable sort of
    # 0 (chose it) before 1 (did not); its first counts[p] entries are what nonzero() returns
    order = torch.sort((~member).t().to(torch.uint8), dim=1, stable=True).indices  # [L+1, B]
    return [(p, order[p, :n]) for p, n in enumerate(counts) if n]


class TimesBlock(nn.Module):
    def __init__(self, d_model: int, d_ff: int, top_k: int, num_kernels: int) -> None:
        super().__init__()
        self.k = top_k
        self.conv = nn.Sequential(Inception2d(d_model, d_ff, num_kernels), nn.GELU(), Inception2d(d_ff, d_model, num_kernels))

    def forward(self, x):  # x: [B, L, d]
        B, L, d = x.shape
        periods, weights = top_periods(x, min(self.k, L // 2))  # [B, k], [B, k]
        weights = weights.to(x.dtype)
        out = torch.zeros_like(x)
        for p, idx in period_groups(periods, L):
            chose = periods == p  # [B, k]
            w = (weights * chose).sum(1)[idx]  # [b]: their weight for it (summed if two frequencies gave p)
            rows = -(-L // p)
            sub = nn.functional.pad(x[idx], (0, 0, 0, rows * p - L))  # [b, rows*p, d]: zeros at the end
            grid = sub.reshape(len(idx), rows, p, d).permute(0, 3, 1, 2)  # [b, d, rows, p]: row = cycle, column = phase
            y = self.conv(grid).permute(0, 2, 3, 1).reshape(len(idx), rows * p, d)[:, :L]  # [b, L, d]
            out = out.index_add(0, idx, y * w[:, None, None])
        return out + x  # [B, L, d]


class TimesNetNet(nn.Module):
    def __init__(self, n_features: int, seq_len: int, d_model: int, d_ff: int, top_k: int, num_kernels: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Conv1d(n_features, d_model, 3, padding=1, bias=False)  # token embedding over neighbouring bars
        self.register_buffer("pos", sinusoidal_encoding(seq_len, d_model), persistent=False)  # [L, d]: derived, not saved
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(TimesBlock(d_model, d_ff, top_k, num_kernels) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(layers))
        self.head = TrendHead(seq_len * d_model)

    def forward(self, x):  # x: [B, L, F]
        h = self.drop(self.embed(x.transpose(1, 2)).transpose(1, 2) + self.pos)  # [B, F, L] -> [B, d, L] -> [B, L, d]
        for block, norm in zip(self.blocks, self.norms):
            h = norm(block(h))  # [B, L, d]
        z = self.drop(nn.functional.gelu(h)).flatten(1)  # [B, L*d]
        return self.head(z)


@dataclass(frozen=True)
class TimesNetConfig:
    # defaults sized for the CPU budget of one fit (the reference's d_model 32, num_kernels 6
    # and 2 layers cost ~10x more: every sample is convolved top_k times per layer)
    d_model: int = pos_field(16)
    d_ff: int = pos_field(16)  # channels inside a block's inception pair
    top_k: int = pos_field(2)  # periods per sample (clamped to L // 2)
    num_kernels: int = pos_field(2)  # inception kernel sizes 1, 3, ..., 2K-1
    layers: int = pos_field(1)
    dropout: float = field(default=0.1, metadata=DROPOUT)


@register("neural", "timesnet", kind="network", config=TimesNetConfig, needs_sequences=True, can_use_gpu=True)
class TimesNet(NeuralModel):
    """TimesNet: per-sample FFT periods fold the window to 2-D; inception convs; amplitude-weighted mix."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "d_model": Choice((8, 16, 32)),
        "top_k": Int(1, 3),
        "dropout": Float(0.0, 0.5),
    }

    tiny_config: ClassVar[dict] = {"d_model": 8, "d_ff": 8, "top_k": 2, "num_kernels": 2, "layers": 1}
    # each sample picks its own periods, and the fold to 2-D depends on them: data-dependent
    # shapes and control flow, which the ONNX exporter (no FFT op in the TorchScript exporter)
    # and a traced TorchScript (it freezes the example's periods) both get wrong
    export_blocker: ClassVar[str] = "its per-sample FFT periods decide the 2-D fold at run time, which ONNX (no rfft) and traced TorchScript (frozen periods) cannot express"

    def host_syncs_per_forward(self) -> int:
        return self.config.layers  # each TimesBlock reads its period counts once (``period_groups``)

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        return TimesNetNet(n_features, seq_len, c.d_model, c.d_ff, c.top_k, c.num_kernels, c.layers, c.dropout)
