"""Dual tower: a context tower over the market-wide ``ctx_*`` features and a stock tower over the
stock's own ``stk_*`` features, and one head per horizon that sees both.

The question it asks: does the market context (volatility regime, breadth, oil, credit,
inflation) change how a stock's own technical state predicts its trend, and differently at
each horizon? Each head gets the context embedding c, the stock embedding projected to the
context width p, and their element-wise product c*p (the interaction), and outputs three class
logits (down/flat/up on ``label_h``) and a score in [-1, 1] (tanh, regressed on ``score_h``).

Loss: sum over horizons of [alpha * MSE(score) + beta * CE(class)] + gamma * (mean squared
cosine between c and p -- keeps the two towers describing different things -- + mean squared
embedding size -- keeps them from growing to cheat the cosine). Learning rates per component
(context, stock, heads) are multiples of ``train.lr`` through the shared trainer's groups.

Multi-task for real: every horizon's head trains jointly in one network, in one pipeline stage
(``train_joint@dual_tower``); each horizon's ``evaluate_joint@dual_tower-<h>`` reads its head.
``models.dual_tower.joint: false`` trains one network per horizon instead (the ablation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from trendfactory.errors import TrendfactoryError
from trendfactory.models.common.joint import JointModel
from trendfactory.models.common.layers import Dropout
from trendfactory.models.common.trainer import Task, macro_f1, to_host
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.params import DROPOUT, NON_NEGATIVE, POS_LIST, POSITIVE, choice, pos_field


class Tower(nn.Module):
    """Linear + BatchNorm + ReLU + Dropout per hidden layer, then a linear embedding."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], embedding: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.BatchNorm1d(h), nn.ReLU(), Dropout(dropout)]
            d_in = h
        layers.append(nn.Linear(d_in, embedding))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # [B, d_in] -> [B, embedding]
        return self.net(x)


def _as_slice(idx: list[int]) -> slice | None:
    """``slice(a, b)`` when the indices are a, a+1, ..., b-1; else None."""
    return slice(idx[0], idx[-1] + 1) if idx and idx == list(range(idx[0], idx[-1] + 1)) else None


class Heads(nn.Module):
    """One head per horizon -- each Linear -> ReLU -> Linear(3 logits + 1 score) on z -- computed
    together: the H first layers as one [d, H*hidden] GEMM, the H second layers as one batched
    matmul. The same function as H separate heads (each head's weights are its own slices) in
    4 kernels instead of 4H, which counts on a CPU where a small kernel costs ~20 us."""

    def __init__(self, d_in: int, hidden: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.hidden = n_heads, hidden
        self.first = nn.Linear(d_in, n_heads * hidden)  # the heads' first layers side by side
        bound = 1.0 / math.sqrt(hidden)  # nn.Linear's default init for fan-in `hidden`
        self.second_weight = nn.Parameter(torch.empty(n_heads, hidden, 4).uniform_(-bound, bound))
        self.second_bias = nn.Parameter(torch.empty(n_heads, 1, 4).uniform_(-bound, bound))

    def __len__(self) -> int:
        return self.n_heads

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: [B, d] -> [B, H, 4]
        h = torch.relu(self.first(z)).unflatten(1, (self.n_heads, self.hidden)).transpose(0, 1)  # [B, H*hidden] -> [H, B, hidden]
        return torch.baddbmm(self.second_bias, h, self.second_weight).transpose(0, 1)  # [H, B, 4] -> [B, H, 4]


class DualTowerNet(nn.Module):
    def __init__(self, ctx_idx: list[int], stk_idx: list[int], cfg, n_heads: int) -> None:
        super().__init__()
        self.register_buffer("ctx_idx", torch.tensor(ctx_idx, dtype=torch.long), persistent=False)
        self.register_buffer("stk_idx", torch.tensor(stk_idx, dtype=torch.long), persistent=False)
        # featurize writes the stk_* block then the ctx_* block: slices (views) instead of gathers
        self.ctx_cols = _as_slice(ctx_idx)
        self.stk_cols = _as_slice(stk_idx)
        self.context = Tower(len(ctx_idx), tuple(cfg.context_hidden), cfg.context_embedding, cfg.context_dropout)
        self.stock = Tower(len(stk_idx), tuple(cfg.stock_hidden), cfg.stock_embedding, cfg.stock_dropout)
        self.project = nn.Linear(cfg.stock_embedding, cfg.context_embedding, bias=False)
        self.both = cfg.heads_see == "both"
        d = 3 * cfg.context_embedding if self.both else cfg.context_embedding
        self.heads = Heads(d, cfg.head_hidden, n_heads)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(context embedding [B, Dc], stock embedding [B, Ds]) of rows x [B, F]."""
        xc = x[:, self.ctx_cols] if self.ctx_cols is not None else x[:, self.ctx_idx]  # [B, n_ctx]
        xs = x[:, self.stk_cols] if self.stk_cols is not None else x[:, self.stk_idx]  # [B, n_stk]
        return self.context(xc), self.stock(xs)

    def forward(self, x):  # x: [B, F], the last row of each window
        c, s = self.embed(x)  # [B, Dc], [B, Ds]
        p = self.project(s)  # [B, Dc]: the stock embedding in the context's width
        z = torch.cat([c, p, c * p], dim=1) if self.both else c  # [B, 3Dc] or [B, Dc]
        out = self.heads(z)  # [B, H, 4]
        return out[..., :3], torch.tanh(out[..., 3]), c, p  # logits [B, H, 3], score [B, H]


class MultiHorizon(Task):
    """Batches (x, y [B, H], s [B, H]): the dual tower's multi-task loss (module docstring)."""

    def __init__(self, alpha: float, beta: float, gamma: float, class_weight: torch.Tensor | None = None) -> None:
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.class_weight = class_weight  # [H, 3] or None

    def _parts(self, trainer, net, batch):
        x, y, s = batch[:3]  # x [B, F], y [B, H] classes, s [B, H] scores
        logits, score, c, p = trainer.forward(net, x)  # [B, H, 3], [B, H], [B, Dc], [B, Dc]
        mse = ((score.float() - s) ** 2).mean(dim=0)  # [H]
        # every head's cross-entropy in one call: logits as [B, 3, H] against y [B, H]
        nll = nn.functional.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # [B, H]
        if self.class_weight is None:
            ce = nll.mean(dim=0)  # [H]
        else:  # torch's weighted mean per head: sum(w * nll) / sum(w), w = weight[head, class]
            w = self._weights_on(y.device).gather(1, y.t()).t()  # [B, H]
            ce = (w * nll).sum(dim=0) / w.sum(dim=0)
        return mse, ce, logits, score, c, p

    def loss(self, trainer, net, batch) -> torch.Tensor:
        mse, ce, _, _, c, p = self._parts(trainer, net, batch)
        loss = (self.alpha * mse + self.beta * ce).sum()
        if self.gamma > 0:
            c, p = c.float(), p.float()
            cc, pp, cp = (c * c).sum(1), (p * p).sum(1), (c * p).sum(1)  # [B] each: |c|^2, |p|^2, c.p
            cos2 = (cp * cp / (cc * pp).clamp_min(1e-24)).mean()  # squared cosine (norms clamped at 1e-12)
            size = (cc.mean() + pp.mean()) / c.shape[1]
            loss = loss + self.gamma * (cos2 + size)
        return loss

    def size(self, batch) -> int:
        return int(batch[0].shape[0])

    @torch.no_grad()
    def validate(self, trainer, net, batches) -> dict[str, float]:
        """val/loss: the heads' loss (no regulariser); per head: log loss and macro F1; the
        score head's daily Rank IC (what the model predicts)."""
        # summed on the device, copied to the host once after the pass (no per-batch sync); the
        # loss in float64, b times each batch's float32 mean, as the host-side sum it replaces
        tot, n, ys, ps, ce_sum, scores = None, 0, [], [], None, []
        for batch in batches:
            mse, ce, logits, score, _, _ = self._parts(trainer, net, batch)
            scores.append(score.float())
            b = batch[0].shape[0]
            part = (self.alpha * mse + self.beta * ce).sum().double() * b
            tot = part if tot is None else tot + part
            ce_sum = ce * b if ce_sum is None else ce_sum + ce * b
            n += b
            ys.append(batch[1])
            ps.append(logits.argmax(-1))
        if n == 0:
            return {"val/loss": float("nan"), "val/macro_f1": float("nan")}
        y, pr = to_host(ys), to_host(ps)  # [n, H]
        out = {"val/loss": float(tot) / n, "val/macro_f1": float(np.mean([macro_f1(y[:, k], pr[:, k]) for k in range(y.shape[1])]))}
        for k, v in enumerate((ce_sum / max(n, 1)).tolist()):
            out[f"val/log_loss_head{k}"] = v
        return self.with_rank_ic(out, scores)


@dataclass(frozen=True)
class DualTowerConfig:
    # context tower over the ctx_* features and stock tower over the stk_* features:
    # Linear + BatchNorm + ReLU + Dropout per hidden layer, then a linear embedding
    context_hidden: tuple[int, ...] = field(default=(128, 64), metadata=POS_LIST)
    context_embedding: int = pos_field(32)
    context_dropout: float = field(default=0.2, metadata=DROPOUT)
    stock_hidden: tuple[int, ...] = field(default=(256, 128), metadata=POS_LIST)
    stock_embedding: int = pos_field(64)
    stock_dropout: float = field(default=0.3, metadata=DROPOUT)
    # what each horizon's head sees: both = [context, projected stock, their product];
    # context = the context embedding only (an ablation: no stock-specific information)
    heads_see: str = field(default="both", metadata=choice("both", "context"))
    head_hidden: int = pos_field(64)
    alpha: float = field(default=1.0, metadata=NON_NEGATIVE)  # weight of each head's score MSE
    beta: float = field(default=0.5, metadata=NON_NEGATIVE)  # weight of each head's class CE
    gamma: float = field(default=0.01, metadata=NON_NEGATIVE)  # orthogonality + magnitude penalty
    lr_context: float = field(default=1.0, metadata=POSITIVE)  # x train.lr
    lr_stock: float = field(default=0.5, metadata=POSITIVE)
    lr_heads: float = field(default=1.0, metadata=POSITIVE)
    sample_weight: str = field(default="none", metadata=choice("none", "balanced"))
    joint: bool = True  # one network for every horizon; false: one network per horizon (ablation)


@register("dual_tower", "dual_tower", kind="joint", config=DualTowerConfig, can_use_gpu=True)
class DualTower(JointModel):
    """Context tower x stock tower, one head per horizon, trained jointly (multi-task)."""

    def build_joint(self, columns: list[str], n_heads: int) -> DualTowerNet:
        ctx = [i for i, c in enumerate(columns) if c.startswith("ctx_")]
        stk = [i for i, c in enumerate(columns) if c.startswith("stk_")]
        if not ctx or not stk:
            raise TrendfactoryError(f"dual_tower: needs both ctx_* and stk_* features (got {len(ctx)} context, {len(stk)} stock); check the featurize output")
        return DualTowerNet(ctx, stk, self.config, n_heads)

    def horizon_groups(self, horizons: list[int]) -> list[list[int]]:
        # joint: one network, one head per horizon; otherwise one network per horizon (ablation)
        return [list(horizons)] if self.config.joint else [[h] for h in horizons]

    def param_groups(self, net: DualTowerNet) -> list[dict]:
        c = self.config
        return [
            {"params": list(net.context.parameters()), "lr_mult": c.lr_context},
            {"params": [*net.stock.parameters(), *net.project.parameters()], "lr_mult": c.lr_stock},
            {"params": list(net.heads.parameters()), "lr_mult": c.lr_heads},
        ]

    def task(self, split, ends: np.ndarray, horizons: list[int]) -> MultiHorizon:
        c = self.config
        return MultiHorizon(c.alpha, c.beta, c.gamma, self._class_weight(split, ends, horizons))

    def _class_weight(self, split, ends, horizons) -> torch.Tensor | None:
        if self.config.sample_weight == "none":
            return None
        rows = []
        for h in horizons:
            y = np.asarray(split.labels(h)[ends]).astype(np.int64) + 1
            counts = np.bincount(y, minlength=3).astype(np.float64)
            rows.append(np.where(counts > 0, len(y) / (3 * np.maximum(counts, 1)), 0.0))
        return torch.tensor(np.array(rows), dtype=torch.float32)  # [H, 3]

    @torch.no_grad()
    def embed(self, samples: Samples) -> tuple[np.ndarray, np.ndarray]:
        """(context embeddings [n, Dc], stock embeddings [n, Ds]) of the samples (the network
        that serves ``samples.horizon``)."""
        self._check_fitted("embed")
        net, _ = self.head(samples.horizon)
        c, s = net.embed(torch.from_numpy(samples.tabular(())))
        return c.numpy(), s.numpy()
