"""What the gradient-boosting models share: tabular inputs, class weights, the device."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from trendfactory.device import resolve_device
from trendfactory.models.base import TrendModel
from trendfactory.models.data import Samples, class_weights
from trendfactory.params import CLASS_WEIGHT, DEVICE, LAGS, pos_field


@dataclass(frozen=True)
class BoostingConfig:
    """The keys every boosting model's section has (each model's config adds its library's)."""

    early_stopping_rounds: int = pos_field(50)
    class_weight: str = field(default="none", metadata=CLASS_WEIGHT)
    device: str = field(default="auto", metadata=DEVICE)
    n_jobs: int = pos_field(2)
    lags: tuple[int, ...] = field(default=(), metadata=LAGS)


log = logging.getLogger("trendfactory")

PROGRESS_EVERY = 100  # iterations between progress lines of a long fit


@dataclass
class TabularData:
    """Train and validation arrays as every booster takes them."""

    X: np.ndarray  # [n, F*(1+lags)] float32
    y: np.ndarray  # [n] int64 0/1/2
    w: np.ndarray | None  # [n] sample weights (class_weight) or None
    X_val: np.ndarray
    y_val: np.ndarray
    names: list[str]


class BoostingModel(TrendModel):
    """A booster on the tabular view; early stopping on validation log loss."""

    def _data(self, train: Samples, val: Samples) -> TabularData:
        lags = self.config.lags
        y = train.classes()
        return TabularData(
            X=train.tabular(lags),
            y=y,
            w=class_weights(y, self.config.class_weight),
            X_val=val.tabular(lags),
            y_val=val.classes(),
            names=train.tabular_feature_names(lags),
        )

    def _device(self) -> str:
        return resolve_device(self.config.device, f"models.{self.name}.device").type

    def _record(self, train_loss: list[float], val_loss: list[float], best: int) -> None:
        self._log_history(train_loss=train_loss, val_loss=val_loss)
        self.best_iteration_ = int(best)
        log.info("%s h%d: best iteration %d of %d, val log loss %.5f", self.name, self.horizon, best + 1, len(val_loss), val_loss[best] if val_loss else float("nan"))

    def feature_importance(self) -> dict[str, float] | None:
        gains = self._gains()
        total = sum(gains.values())
        if total <= 0:
            return None
        return {k: v / total for k, v in gains.items()}

    def _gains(self) -> dict[str, float]:
        raise NotImplementedError
