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
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trendfactory.device import resolve_device
from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import FitContext, Predictions
from trendfactory.models.common.layers import Dropout
from trendfactory.models.common.neural import NeuralModel, _Scorer, resume_key
from trendfactory.models.common.trainer import Task, Trainer, macro_f1
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.params import DROPOUT, NON_NEGATIVE, POS_LIST, POSITIVE, choice, config_to_dict, pos_field
from trendfactory.windows.torch_data import BatchGatherer


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


class _FirstTwo(nn.Module):
    """The dual tower's (logits, score), without the embeddings it also returns."""

    def __init__(self, net: DualTowerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):  # x: [B, F]
        logits, score, _, _ = self.net(x)
        return logits, score


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
            w = self.class_weight.to(y.device).gather(1, y.t()).t()  # [B, H]
            ce = (w * nll).sum(dim=0) / w.sum(dim=0)
        return mse, ce, logits, c, p

    def loss(self, trainer, net, batch) -> torch.Tensor:
        mse, ce, _, c, p = self._parts(trainer, net, batch)
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
        """val/loss: the heads' loss (no regulariser); per head: log loss and macro F1."""
        tot, n, ys, ps, ce_sum = 0.0, 0, [], [], None
        for batch in batches:
            mse, ce, logits, _, _ = self._parts(trainer, net, batch)
            b = batch[0].shape[0]
            tot += float((self.alpha * mse + self.beta * ce).sum()) * b
            ce_sum = ce * b if ce_sum is None else ce_sum + ce * b
            n += b
            ys.append(batch[1].cpu().numpy())
            ps.append(logits.argmax(-1).cpu().numpy())
        y, pr = np.concatenate(ys), np.concatenate(ps)  # [n, H]
        out = {"val/loss": tot / max(n, 1), "val/macro_f1": float(np.mean([macro_f1(y[:, k], pr[:, k]) for k in range(y.shape[1])]))}
        for k, v in enumerate((ce_sum / max(n, 1)).tolist()):
            out[f"val/log_loss_head{k}"] = v
        return out


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
class DualTower(NeuralModel):
    """Context tower x stock tower, one head per horizon, trained jointly (multi-task)."""

    input_kind = "tabular"
    joint: ClassVar[bool] = True

    @property
    def lags(self) -> tuple[int, ...]:
        return ()  # the last row only: the towers see the current state

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        raise NotImplementedError("the dual tower is built from its feature names: see _net")

    def _net(self, n_heads: int) -> DualTowerNet:
        ctx = [i for i, c in enumerate(self.columns_) if c.startswith("ctx_")]
        stk = [i for i, c in enumerate(self.columns_) if c.startswith("stk_")]
        if not ctx or not stk:
            raise TrendfactoryError(f"dual_tower: needs both ctx_* and stk_* features (got {len(ctx)} context, {len(stk)} stock); check the featurize output")
        return DualTowerNet(ctx, stk, self.config, n_heads)

    def param_groups(self, net: DualTowerNet) -> list[dict]:
        c = self.config
        return [
            {"params": list(net.context.parameters()), "lr_mult": c.lr_context},
            {"params": [*net.stock.parameters(), *net.project.parameters()], "lr_mult": c.lr_stock},
            {"params": list(net.heads.parameters()), "lr_mult": c.lr_heads},
        ]

    def _class_weight(self, split, ends, horizons) -> torch.Tensor | None:
        if self.config.sample_weight == "none":
            return None
        rows = []
        for h in horizons:
            y = np.asarray(split.labels(h)[ends]).astype(np.int64) + 1
            counts = np.bincount(y, minlength=3).astype(np.float64)
            rows.append(np.where(counts > 0, len(y) / (3 * np.maximum(counts, 1)), 0.0))
        return torch.tensor(np.array(rows), dtype=torch.float32)  # [H, 3]

    # ---- hooks -------------------------------------------------------------------------------
    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        cfg, tc = self.config, self.train_config
        device = resolve_device(tc.device, "train.device")
        self.columns_ = list(train.feature_names)
        all_h = list(train.split.horizons)
        if self.horizon not in all_h:
            raise TrendfactoryError(f"dual_tower: horizon {self.horizon} is not in the window store ({all_h})")
        # joint: one network, one head per horizon; otherwise one network per horizon
        self.groups_ = [all_h] if cfg.joint else [[h] for h in all_h]
        self.nets_ = []
        histories = []
        for group in self.groups_:
            torch.manual_seed(self.seed)
            net = self._net(len(group))
            tr_ends, va_ends = self.common_ends(train, group), self.common_ends(val, group)
            batches = [
                BatchGatherer(s.split, group, bs, shuffle=shuffle, seed=self.seed, device=device, ends=e, lags=(), with_scores=True,
                              samples_per_epoch=tc.samples_per_epoch if shuffle else None)
                for s, e, bs, shuffle in ((train, tr_ends, tc.batch_size, True), (val, va_ends, tc.eval_batch_size, False))
            ]
            run_id = resume_key(self.name, group, self.seed, cfg, tc, (train, tr_ends), (val, va_ends))
            ckpt = context.checkpoint_dir / "-".join(f"h{h}" for h in group) if context.checkpoint_dir else None
            trainer = Trainer(tc, seed=self.seed, device=device, on_epoch=context.on_epoch if len(self.groups_) == 1 else None,
                              checkpoint_dir=ckpt, run_id=run_id, name=f"dual_tower {'+'.join(f'h{h}' for h in group)}")
            task = MultiHorizon(cfg.alpha, cfg.beta, cfg.gamma, self._class_weight(train.split, tr_ends, group))
            result = trainer.fit(net, *batches, self.param_groups(net), task)
            self.nets_.append(net.to("cpu").eval())
            histories.append(result)
        self.horizons_ = all_h
        best = histories[0]
        self.best_iteration_ = best.best_epoch
        self._log_history(train_loss=best.history.get("train/loss", []), val_loss=best.history.get("val/loss", []))

    def _head(self, horizon: int) -> tuple[DualTowerNet, int]:
        for net, group in zip(self.nets_, self.groups_):
            if horizon in group:
                return net, group.index(horizon)
        raise TrendfactoryError(f"dual_tower: no head for horizon {horizon}; trained for {self.horizons_}")

    @torch.no_grad()
    def _forward_all(self, samples: Samples) -> tuple[np.ndarray, ...]:
        net, k = self._head(samples.horizon)
        X = torch.from_numpy(samples.tabular(()))  # [n, F]
        outs = []
        for lo in range(0, len(X), self.train_config.eval_batch_size):
            logits, score, c, p = net(X[lo : lo + self.train_config.eval_batch_size])
            outs.append((torch.softmax(logits[:, k].float(), 1).numpy(), score[:, k].float().numpy()))
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def _predict(self, samples: Samples) -> Predictions:
        proba, score = self._forward_all(samples)
        return Predictions.from_proba(proba, score)  # the score head predicts the score directly

    def scoring_module(self, horizon: int) -> nn.Module:
        net, k = self._head(horizon)
        return _Scorer(_FirstTwo(net.eval()), k, use_score_head=True)

    def scoring_inputs(self, samples: Samples, part: slice) -> np.ndarray:
        return samples.tabular(())[part]  # [n, F]: the last row of each window

    @torch.no_grad()
    def embed(self, samples: Samples) -> tuple[np.ndarray, np.ndarray]:
        """(context embeddings [n, Dc], stock embeddings [n, Ds]) of the samples (the network
        that serves ``samples.horizon``)."""
        self._check_fitted("embed")
        net, _ = self._head(samples.horizon)
        c, s = net.embed(torch.from_numpy(samples.tabular(())))
        return c.numpy(), s.numpy()

    def _state_meta(self) -> dict:
        return {
            "groups": self.groups_,
            "columns": self.columns_,
            "train": config_to_dict(self.train_config),  # no timings: DVC hashes this file
        }

    def _save_state(self, directory: Path) -> None:
        for i, net in enumerate(self.nets_):
            torch.save(net.state_dict(), directory / f"weights-{i}.pt")

    def _load_state(self, directory: Path, state: dict) -> None:
        from trendfactory.params import TrainConfig, build_config

        self.train_config = build_config(TrainConfig, state["train"], "train")
        self.groups_ = [list(g) for g in state["groups"]]
        self.columns_ = list(state["columns"])
        self.horizons_ = sorted({h for g in self.groups_ for h in g})
        self.nets_ = []
        for i, group in enumerate(self.groups_):
            net = self._net(len(group))
            net.load_state_dict(torch.load(directory / f"weights-{i}.pt", map_location="cpu", weights_only=True))
            self.nets_.append(net.eval())
