"""What every torch model shares: building the network, feeding it batches, the shared
trainer, prediction and safe saving (a ``state_dict`` loaded with ``weights_only=True``).

A neural model is a :class:`NeuralModel` subclass in its own file that implements ``build``
(its architecture) and says whether it reads windows or tabular rows. How it trains is the
shared ``train`` params section (:class:`~trendfactory.params.TrainConfig`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trendfactory.device import resolve_device
from trendfactory.models.base import FitContext, Predictions, TrendModel
from trendfactory.models.common.trainer import Classification, Trainer, fingerprint
from trendfactory.models.data import Samples, class_weights
from trendfactory.params import TrainConfig, config_to_dict
from trendfactory.windows.torch_data import BatchGatherer

log = logging.getLogger("trendfactory")

WEIGHTS_FILE = "weights.pt"


class NeuralModel(TrendModel):
    """A network trained by :class:`~trendfactory.models.common.trainer.Trainer`."""

    uses_trainer: ClassVar[bool] = True
    #: "window": x is [B, seq_len, F]; "tabular": x is [B, F*(1+len(lags))] (the last row + lags)
    input_kind: ClassVar[str] = "window"

    def __init__(self, config=None, *, horizon: int = 5, seed: int = 0, train: TrainConfig | None = None) -> None:
        super().__init__(config, horizon=horizon, seed=seed)
        self.train_config = train if train is not None else TrainConfig()

    # ---- what a model file provides ----------------------------------------------------------
    def build(self, n_features: int, seq_len: int) -> nn.Module:
        """The network for inputs of ``n_features`` features (and ``seq_len`` bars)."""
        raise NotImplementedError

    def param_groups(self, net: nn.Module) -> list[dict] | None:
        """Parameter groups with learning-rate multipliers ([{"params", "lr_mult"}]); None = one group."""
        return None

    # ---- inputs ------------------------------------------------------------------------------
    @property
    def lags(self) -> tuple[int, ...] | None:
        return tuple(self.config.lags) if self.input_kind == "tabular" else None

    def _batches(self, samples: Samples, train: bool, device: torch.device) -> BatchGatherer:
        cfg = self.train_config
        return BatchGatherer(
            samples.split, samples.horizon, cfg.batch_size if train else cfg.eval_batch_size, shuffle=train, seed=self.seed,
            device=device, ends=samples.ends, lags=self.lags, with_scores=True,
        )

    # ---- hooks -------------------------------------------------------------------------------
    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        cfg = self.train_config
        device = resolve_device(cfg.device, "train.device")
        torch.manual_seed(self.seed)
        self.shape_ = (train.n_features, train.seq_len)
        net = self.build(*self.shape_)
        w = class_weights(train.classes(), cfg.class_weight)
        cw = None
        if w is not None:  # per-sample weights -> one weight per class
            y = train.classes()
            cw = torch.tensor([float(w[y == c][0]) if np.any(y == c) else 0.0 for c in range(3)], dtype=torch.float32)
        run_id = fingerprint(self.name, self.horizon, self.seed, config_to_dict(self.config), _train_key(cfg), train.feature_names, len(train), len(val))
        trainer = Trainer(
            cfg, seed=self.seed, device=device, on_epoch=context.on_epoch,
            checkpoint_dir=context.checkpoint_dir, run_id=run_id, name=f"{self.name} h{self.horizon}",
        )
        task = Classification(class_weight=cw, aux_weight=cfg.aux_weight)
        result = trainer.fit(net, self._batches(train, True, device), self._batches(val, False, device), self.param_groups(net), task)
        self.net_ = net.to("cpu").eval()
        self.best_iteration_ = result.best_epoch
        self.train_samples_per_second_ = result.samples_per_second
        self._log_history(train_loss=result.history.get("train/loss", []), val_loss=result.history.get("val/loss", []))
        log.info("%s h%d: best epoch %d of %d, val log loss %.5f, %.0f train samples/s", self.name, self.horizon, result.best_epoch + 1, result.epochs, result.best_val_loss, result.samples_per_second)

    @torch.no_grad()
    def _predict(self, samples: Samples) -> Predictions:
        self.net_.eval()
        n, step = len(samples), self.train_config.eval_batch_size
        # inputs through Samples (so permuted samples work too): tabular rows all at once
        # ([n, F*(1+lags)] is small), windows a batch at a time
        table = torch.from_numpy(samples.tabular(self.lags)) if self.input_kind == "tabular" else None
        probs, scores = [], []
        for lo in range(0, n, step):
            part = slice(lo, min(lo + step, n))
            x = table[part] if table is not None else torch.from_numpy(samples.windows(part))
            logits, score = self.net_(x)
            probs.append(torch.softmax(logits.float(), dim=1).numpy())
            scores.append(score.float().numpy())
        proba = np.concatenate(probs)
        # the score head is trained only with an auxiliary score loss; otherwise p_up - p_down
        return Predictions.from_proba(proba, np.concatenate(scores) if self.train_config.aux_weight > 0 else None)

    def _state_meta(self) -> dict:
        return {"shape": list(self.shape_), "train": config_to_dict(self.train_config), "train_samples_per_second": round(self.train_samples_per_second_, 1)}

    def _save_state(self, directory: Path) -> None:
        torch.save(self.net_.state_dict(), directory / WEIGHTS_FILE)

    def _load_state(self, directory: Path, state: dict) -> None:
        from trendfactory.params import _build  # the params loader's own validation

        self.train_config = _build(TrainConfig, state["train"], "train")
        self.shape_ = tuple(state["shape"])
        self.train_samples_per_second_ = float(state.get("train_samples_per_second", 0.0))
        net = self.build(*self.shape_)
        net.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        self.net_ = net.eval()


def _train_key(cfg: TrainConfig) -> dict:
    """The train settings that change the result (not where it runs or whether it resumes)."""
    d = dataclasses.asdict(cfg)
    for k in ("device", "resume", "eval_batch_size"):
        d.pop(k)
    return d
