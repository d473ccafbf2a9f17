"""The contract of a joint model (kind ``joint``): a network built from the feature names, with
one head per horizon, its own multi-task loss, trained once per fold for every horizon.

A joint model is a :class:`JointModel` subclass in its own file that provides

- ``build_joint(columns, n_heads)``: the network for rows x [B, F] of the named feature columns
  (the last row of each window); its forward returns ``(logits [B, H, 3], score [B, H], ...)``,
  anything after the first two being the model's own (embeddings its loss reads);
- ``task(split, ends, horizons)``: the :class:`~trendfactory.models.common.trainer.Task` that
  computes its loss and validation metrics for those horizons' heads;
- optionally ``param_groups(net)`` (learning-rate multipliers per component) and
  ``horizon_groups(horizons)`` (which horizons share a network: all of them by default; one
  network per horizon is the ablation).

Fitting, the shared trainer, prediction (each horizon from its head, the score head's output as
the score), export and saving are here, the same for every joint model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from trendfactory.device import resolve_device
from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import FitContext, Predictions
from trendfactory.models.common.neural import HeadScorer, TorchModel, resume_key
from trendfactory.models.common.trainer import RankICKeys, Task, Trainer
from trendfactory.models.data import Samples
from trendfactory.params import TrainConfig, build_config, config_to_dict
from trendfactory.windows.torch_data import BatchGatherer


class FirstTwo(nn.Module):
    """A joint network's (logits, score), without the extra outputs its loss reads."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):  # x: [B, F]
        logits, score, *_ = self.net(x)
        return logits, score


class JointModel(TorchModel):
    """A network over the last row of each window, built from the feature names, one head per
    horizon, trained with its own multi-task loss (module docstring)."""

    # ---- what a model file provides ----------------------------------------------------------
    def build_joint(self, columns: list[str], n_heads: int) -> nn.Module:
        """The network for rows of ``columns`` with ``n_heads`` horizon heads."""
        raise NotImplementedError

    def task(self, split, ends: np.ndarray, horizons: list[int]) -> Task:
        """The loss and validation of the heads for ``horizons`` on the train rows ``ends``."""
        raise NotImplementedError

    def param_groups(self, net: nn.Module) -> list[dict] | None:
        """Parameter groups with learning-rate multipliers ([{"params", "lr_mult"}]); None = one group."""
        return None

    def horizon_groups(self, horizons: list[int]) -> list[list[int]]:
        """Which horizons share one network: all of them, unless a model says otherwise."""
        return [list(horizons)]

    @property
    def lags(self) -> tuple[int, ...]:
        return ()  # the last row only: a joint model sees the current state

    # ---- hooks -------------------------------------------------------------------------------
    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        tc = self.train_config
        device = resolve_device(tc.device, "train.device")
        self.columns_ = list(train.feature_names)
        all_h = list(train.split.horizons)
        if self.horizon not in all_h:
            raise TrendfactoryError(f"{self.name}: horizon {self.horizon} is not in the window store ({all_h})")
        self.groups_ = self.horizon_groups(all_h)
        self.nets_ = []
        histories = []
        for group in self.groups_:
            torch.manual_seed(self.seed)
            net = self.build_joint(self.columns_, len(group))
            tr_ends, va_ends = self.common_ends(train, group), self.common_ends(val, group)
            batches = [
                BatchGatherer(s.split, group, bs, shuffle=shuffle, seed=self.seed, device=device, ends=e, lags=(), with_scores=True, samples_per_epoch=tc.samples_per_epoch if shuffle else None)
                for s, e, bs, shuffle in ((train, tr_ends, tc.batch_size, True), (val, va_ends, tc.eval_batch_size, False))
            ]
            run_id = resume_key(type(self), group, self.seed, self.config, tc, (train, tr_ends), (val, va_ends))
            ckpt = context.checkpoint_dir / "-".join(f"h{h}" for h in group) if context.checkpoint_dir else None
            trainer = Trainer(
                tc,
                seed=self.seed,
                device=device,
                on_epoch=context.on_epoch if len(self.groups_) == 1 else None,
                checkpoint_dir=ckpt,
                run_id=run_id,
                name=f"{self.name} {'+'.join(f'h{h}' for h in group)}",
                auto_precision=self.gpu_precision,
            )
            task = self.task(train.split, tr_ends, group)
            task.rank_ic_keys = RankICKeys.of(val.split, va_ends, group)  # the score head's val Rank IC, every epoch
            result = trainer.fit(net, *batches, self.param_groups(net), task)
            self.nets_.append(net.to("cpu").eval())
            histories.append(result)
        self.horizons_ = all_h
        best = histories[0]
        self.best_iteration_ = best.best_epoch
        self._log_history(**best.curves())

    def head(self, horizon: int) -> tuple[nn.Module, int]:
        """(the fitted network that serves ``horizon``, the index of its head there)."""
        for net, group in zip(self.nets_, self.groups_):
            if horizon in group:
                return net, group.index(horizon)
        raise TrendfactoryError(f"{self.name}: no head for horizon {horizon}; trained for {self.horizons_}")

    def _predict(self, samples: Samples) -> Predictions:
        net, k = self.head(samples.horizon)
        X = samples.tabular(())  # [n, F]
        step = self.train_config.eval_batch_size
        # the score head is always trained (the model's own loss): it predicts the score directly
        return self._score(net, (X[lo : lo + step] for lo in range(0, len(X), step)), k, use_score_head=True)

    # ---- export ------------------------------------------------------------------------------
    def scoring_module(self, horizon: int) -> nn.Module:
        """The fitted network as it scores ``horizon``: rows -> (probabilities [B, 3], score [B])."""
        self._check_fitted("export")
        net, k = self.head(horizon)
        return HeadScorer(FirstTwo(net.eval()), k, use_score_head=True)

    def scoring_inputs(self, samples: Samples, part: slice) -> np.ndarray:
        return samples.tabular(())[part]  # [n, F]: the last row of each window

    # ---- saving ------------------------------------------------------------------------------
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
        self.train_config = build_config(TrainConfig, state["train"], "train")
        self.groups_ = [list(g) for g in state["groups"]]
        self.columns_ = list(state["columns"])
        self.horizons_ = sorted({h for g in self.groups_ for h in g})
        self.nets_ = []
        for i, group in enumerate(self.groups_):
            net = self.build_joint(self.columns_, len(group))
            net.load_state_dict(torch.load(directory / f"weights-{i}.pt", map_location="cpu", weights_only=True))
            self.nets_.append(net.eval())
