"""Neural: Temporal Fusion Transformer -- gated residual networks, per-step variable selection,
an LSTM encoder and interpretable causal self-attention; the head reads the window's last bar.

Paper: Bryan Lim, Sercan Ö. Arık, Nicolas Loeff, Tomas Pfister (2021), "Temporal Fusion
Transformers for Interpretable Multi-horizon Time Series Forecasting", International Journal
of Forecasting 37(4). Reference implementation (TensorFlow):
github.com/google-research/google-research/tree/master/tft.

How this version maps to the paper's core mechanism:

- **Gated residual network** (GRN, paper eq. 2-5): ``LayerNorm(skip(a) + GLU(dropout(W1 ELU(W2 a
  + b2) + b1)))``, the skip a linear projection when the widths differ. GLU(g) = sigmoid(W4 g +
  b4) * (W5 g + b5). The paper's optional context input ``c`` (static covariates) is not needed:
  this data has no static covariates, so every GRN is the static-free form.
- **Variable selection network** (paper 4.2) over the F features at every time step: each scalar
  feature gets its own linear embedding ``xi_f = x_f W_f + b_f`` (the reference's embedding of a
  real-valued input, one Linear(1, hidden) per feature), the selection weights are
  ``softmax(GRN(flatten(xi_1..xi_F)))`` over the F features, and the step's input is the
  weighted sum of the (optionally per-feature-GRN-processed) embeddings. The mean selection
  weight per feature over validation windows is the model's native feature importance (the
  paper's variable importance, section 7.1).
  CPU economy: because the embeddings are linear in x, the selection GRN's first dense layer
  and skip projection on the flattened [F*hidden] embedding are folded into [F, n] matrices, so
  the [B, L, F, hidden] embedding tensor is never built (exactly the same function and
  gradients, see ``fold``). ``feature_grn: true`` adds the paper's per-feature GRN on each
  embedding (batched over features with einsum; builds [B, L, F, hidden], several times slower).
- **Sequence-to-sequence layer**: an LSTM encoder over the selected inputs (paper 4.5), then a
  gated skip connection ``LayerNorm(xi + GLU(dropout(lstm)))``. There is no decoder LSTM over
  known future inputs: the task is classifying one window into down / flat / up per horizon,
  not decoding a multi-step forecast, and there are no known future inputs.
- **Static enrichment** (paper 4.6) without static covariates is a plain GRN per step.
- **Interpretable multi-head attention** (paper 4.4): heads have their own query/key projections
  but share one value projection; their outputs are averaged (not concatenated) before the
  output projection, so the averaged attention pattern is a single interpretable weighting.
  A causal mask keeps step t from attending to steps after t. Then a gated skip + LayerNorm,
  the position-wise GRN, and the final gated skip to the LSTM layer's output (paper 4.6).
- **Output**: instead of quantile outputs per future step, the shared TrendHead reads the last
  time step (the window's end bar).

Left out: static covariate encoders and contexts, the decoder over known future inputs, the
quantile loss (training is the shared trainer's classification objective), categorical
embeddings (every feature here is real-valued).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trendfactory.models.base import FitContext
from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import TRAINER_SPACE, NeuralModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.models.search import Choice, Float
from trendfactory.params import DROPOUT, pos_field

#: windows (spread evenly over the validation split) averaged for the variable-selection importance
IMPORTANCE_WINDOWS = 4096


class GLU(nn.Module):
    """Gated linear unit: sigmoid(W4 g + b4) * (W5 g + b5), one Linear for both halves."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, 2 * d_out)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(g).chunk(2, dim=-1)  # [..., d_out] each
        return torch.sigmoid(gate) * value


class GateAddNorm(nn.Module):
    """LayerNorm(residual + GLU(dropout(x))): the gated skip connection used throughout TFT."""

    def __init__(self, d_in: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.drop = Dropout(dropout)
        self.glu = GLU(d_in, d_out)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.norm(residual + self.glu(self.drop(x)))


class GRN(nn.Module):
    """Gated residual network without a context input (no static covariates here).

    ``forward(a)`` = LayerNorm(skip(a) + GLU(dropout(fc2(ELU(fc1(a)))))); ``finish`` takes the
    first dense layer's output and the skip already computed (the variable selection computes
    both from a folded form of its flattened input)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_hidden)
        self.gate = GateAddNorm(d_hidden, d_out, dropout)
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()

    def finish(self, pre: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc2(nn.functional.elu(pre)), skip)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.finish(self.fc1(a), self.skip(a))


class FeatureGRN(nn.Module):
    """F independent GRNs (hidden -> hidden), one per feature, as batched einsums over [B, L, F, H]."""

    def __init__(self, n_features: int, d: int, dropout: float) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d)  # nn.Linear's default init range for fan-in d

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))

        self.w1, self.b1 = param(n_features, d, d), param(n_features, d)
        self.w2, self.b2 = param(n_features, d, d), param(n_features, d)
        self.wg, self.bg = param(n_features, d, 2 * d), param(n_features, 2 * d)  # GLU: value and gate
        self.gamma, self.beta = nn.Parameter(torch.ones(n_features, d)), nn.Parameter(torch.zeros(n_features, d))
        self.drop = Dropout(dropout)

    def forward(self, e: torch.Tensor) -> torch.Tensor:  # e: [B, L, F, H]
        h = nn.functional.elu(torch.einsum("blfh,fhk->blfk", e, self.w1) + self.b1)  # [B, L, F, H]
        h = torch.einsum("blfh,fhk->blfk", h, self.w2) + self.b2  # [B, L, F, H]
        g = torch.einsum("blfh,fhk->blfk", self.drop(h), self.wg) + self.bg  # [B, L, F, 2H]
        value, gate = g.chunk(2, dim=-1)  # [B, L, F, H] each
        out = nn.functional.layer_norm(e + torch.sigmoid(gate) * value, e.shape[-1:])  # [B, L, F, H]
        return out * self.gamma + self.beta  # per-feature LayerNorm affine


def fold(lin: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``lin`` applied to flatten(x_f * weight[f] + bias[f] for f) as a map of x itself.

    lin: Linear(F*H -> n) on the flattened per-feature embeddings (index f*H + h); weight, bias:
    [F, H]. Returns M [F, n] and c [n] with lin(flatten(emb)) == x @ M + c for x [..., F], since
    sum_{f,h} A[n,f,h] (x_f W[f,h] + b[f,h]) = sum_f x_f (sum_h A[n,f,h] W[f,h]) + const."""
    F, H = weight.shape
    A = lin.weight.view(-1, F, H)  # [n, F*H] -> [n, F, H]
    M = torch.einsum("nfh,fh->fn", A, weight)  # [F, n]
    c = torch.einsum("nfh,fh->n", A, bias) + lin.bias  # [n]
    return M, c


class VariableSelection(nn.Module):
    """Per-step variable selection over F scalar features (paper 4.2), static-free."""

    def __init__(self, n_features: int, d: int, dropout: float, feature_grn: bool) -> None:
        super().__init__()
        # one Linear(1, d) per feature: xi_f = x_f * W[f] + b[f]
        # (initialised as nn.Linear(1, d) is: uniform in +-1/sqrt(fan-in 1))
        self.weight = nn.Parameter(torch.empty(n_features, d).uniform_(-1.0, 1.0))
        self.bias = nn.Parameter(torch.empty(n_features, d).uniform_(-1.0, 1.0))
        # selection GRN over the flattened [F*d] embeddings -> F logits (its skip: Linear(F*d, F))
        self.select = GRN(n_features * d, d, n_features, dropout)
        self.feature_grn = FeatureGRN(n_features, d, dropout) if feature_grn else None

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Selection weights [B, L, F] (each step's sum to 1) for x [B, L, F]."""
        m1, c1 = fold(self.select.fc1, self.weight, self.bias)  # [F, d], [d]
        ms, cs = fold(self.select.skip, self.weight, self.bias)  # [F, F], [F]
        logits = self.select.finish(x @ m1 + c1, x @ ms + cs)  # [B, L, F]
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: [B, L, F]
        v = self.weights(x)  # [B, L, F]
        if self.feature_grn is None:
            # sum_f v_f (x_f W[f] + b[f]) without building [B, L, F, d]
            combined = (v * x) @ self.weight + v @ self.bias  # [B, L, d]
        else:
            emb = x.unsqueeze(-1) * self.weight + self.bias  # [B, L, F, d]
            combined = torch.einsum("blf,blfh->blh", v, self.feature_grn(emb))  # [B, L, d]
        return combined, v


class InterpretableAttention(nn.Module):
    """Multi-head attention whose heads share the value projection and are averaged (paper 4.4)."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dk = heads, d // heads
        self.q = nn.Linear(d, heads * self.dk, bias=False)
        self.k = nn.Linear(d, heads * self.dk, bias=False)
        self.v = nn.Linear(d, self.dk, bias=False)  # one value projection shared by every head
        self.out = nn.Linear(self.dk, d, bias=False)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: [B, L, d]
        B, L, _ = x.shape
        q = self.q(x).view(B, L, self.heads, self.dk).transpose(1, 2)  # [B, h, L, dk]
        k = self.k(x).view(B, L, self.heads, self.dk).transpose(1, 2)  # [B, h, L, dk]
        v = self.v(x).unsqueeze(1)  # [B, 1, L, dk]: broadcast to every head
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dk)  # [B, h, L, L]
        future = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)  # key after query
        attn = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # [B, h, L, L]
        heads = self.drop(attn) @ v  # [B, h, L, dk]
        return self.out(heads.mean(dim=1)), attn.mean(dim=1)  # [B, L, d], averaged pattern [B, L, L]


class TFTNet(nn.Module):
    def __init__(self, n_features: int, hidden: int, heads: int, dropout: float, feature_grn: bool) -> None:
        super().__init__()
        self.selection = VariableSelection(n_features, hidden, dropout, feature_grn)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.lstm_gate = GateAddNorm(hidden, hidden, dropout)
        self.enrich = GRN(hidden, hidden, hidden, dropout)  # static enrichment, no static context
        self.attn = InterpretableAttention(hidden, heads, dropout)
        self.attn_gate = GateAddNorm(hidden, hidden, dropout)
        self.positionwise = GRN(hidden, hidden, hidden, dropout)
        self.out_gate = GateAddNorm(hidden, hidden, 0.0)  # the reference has no dropout on this one
        self.head = TrendHead(hidden)

    def variable_weights(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, F] variable-selection weights of windows x [B, L, F]."""
        return self.selection.weights(x)

    def forward(self, x):  # x: [B, L, F]
        xi, _ = self.selection(x)  # [B, L, d]: selected, embedded inputs
        h, _ = self.lstm(xi)  # [B, L, d]
        phi = self.lstm_gate(h, xi)  # [B, L, d]: gated skip over the LSTM
        theta = self.enrich(phi)  # [B, L, d]
        att, _ = self.attn(theta)  # [B, L, d]: causal
        beta = self.attn_gate(att, theta)  # [B, L, d]
        psi = self.positionwise(beta)  # [B, L, d]
        out = self.out_gate(psi, phi)  # [B, L, d]: gated skip past the whole attention block
        return self.head(out[:, -1])  # [B, d] at the window's end row


@dataclass(frozen=True)
class TFTConfig:
    hidden: int = pos_field(32)
    heads: int = pos_field(4)
    dropout: float = field(default=0.1, metadata=DROPOUT)
    feature_grn: bool = False  # the paper's per-feature GRN on each embedding (slower)


@register("neural", "tft", kind="network", config=TFTConfig, needs_sequences=True, can_use_gpu=True)
class TFT(NeuralModel):
    """Temporal Fusion Transformer: variable selection, LSTM, interpretable attention; head on the last step."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        **TRAINER_SPACE,
        "hidden": Choice((16, 32, 64)),
        "dropout": Float(0.0, 0.5),
    }

    tiny_config: ClassVar[dict] = {"hidden": 16, "heads": 2}

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        if c.hidden % c.heads:
            from trendfactory.errors import ParamsError

            raise ParamsError(f"models.tft.hidden: got {c.hidden}, expected a multiple of models.tft.heads ({c.heads})")
        return TFTNet(n_features, c.hidden, c.heads, c.dropout, c.feature_grn)

    # ---- variable-selection weights as feature importance ---------------------------------------
    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        super()._fit(train, val, context)
        self.variable_weights_ = self._mean_variable_weights(val if len(val) else train)

    @torch.no_grad()
    def _mean_variable_weights(self, samples: Samples) -> list[float]:
        """Mean selection weight per feature over up to IMPORTANCE_WINDOWS windows (and their steps)."""
        self.net_.eval()
        n = len(samples)
        positions = np.unique(np.linspace(0, n - 1, min(n, IMPORTANCE_WINDOWS)).round().astype(np.int64))
        total = torch.zeros(samples.n_features, dtype=torch.float64)
        step = self.train_config.eval_batch_size
        for lo in range(0, len(positions), step):
            x = torch.from_numpy(samples.windows(positions[lo : lo + step]))  # [b, L, F]
            total += self.net_.variable_weights(x).double().sum(dim=(0, 1))  # [F]
        return [float(v) for v in (total / total.sum()).tolist()]

    def feature_importance(self) -> dict[str, float] | None:
        weights = getattr(self, "variable_weights_", None)
        if weights is None or not self.is_fitted:
            return None
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum()
        return dict(zip(self.feature_names_, map(float, w)))

    def _state_meta(self) -> dict:
        meta = super()._state_meta()
        if getattr(self, "variable_weights_", None) is not None:
            meta["variable_weights"] = list(self.variable_weights_)
        return meta

    def _load_state(self, directory: Path, state: dict) -> None:
        super()._load_state(directory, state)
        weights = state.get("variable_weights")
        self.variable_weights_ = [float(v) for v in weights] if weights is not None else None
