"""Baseline: the sign of the trailing return, neutral inside a band.

Trend-following in its plainest form: at row t, r = log(close_t / close_{t-n}) (the stock
feature ``stk_ret_{n}``, mapped back from its scaled value), with n the lookback closest to
the horizon unless ``models.momentum.lookback`` says otherwise. The call is +1 when r > band,
-1 when r < -band, 0 otherwise; the band is fitted on train (so neutral calls are as frequent
as flat labels) unless ``models.momentum.band`` fixes it. Probabilities are the train label
frequencies within each call (Laplace-smoothed), so log loss is honest; the score is
tanh(r / s), s the train standard deviation of r, so IC ranks by momentum strength.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import FitContext, Predictions, TrendModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.params import NON_NEGATIVE, check

_RET = re.compile(r"^stk_ret_(\d+)$")


def pick_lookback(feature_names: list[str], horizon: int, wanted: int | None) -> int:
    """The trailing-return lookback to use: ``wanted``, else the available one closest to h."""
    available = sorted(int(m.group(1)) for c in feature_names if (m := _RET.match(c)))
    if not available:
        raise TrendfactoryError("momentum: no stk_ret_<n> feature in the window store; add return lookbacks to features.return_lookbacks")
    if wanted is not None:
        if wanted not in available:
            raise TrendfactoryError(f"models.momentum.lookback: got {wanted}, but the features only have lookbacks {available}; use one of those")
        return wanted
    return min(available, key=lambda n: (abs(n - horizon), n))


@dataclass(frozen=True)
class MomentumConfig:
    # Trailing-return lookback in bars (a features.return_lookbacks value); null: the one
    # closest to the horizon.
    lookback: int | None = field(default=None, metadata=check(lambda v: v >= 1, "an integer >= 1 or null"))
    # Neutral band on the trailing log return; null: fitted on train so that the share of
    # neutral calls equals the train share of flat labels.
    band: float | None = field(default=None, metadata=NON_NEGATIVE)


@register("baseline", "momentum", kind="tabular", config=MomentumConfig)
class Momentum(TrendModel):
    """Sign of the trailing return with a neutral band; train label frequencies per call."""

    def _trailing(self, samples: Samples) -> np.ndarray:
        return samples.raw_feature(f"stk_ret_{self.lookback_}")

    def _calls(self, r: np.ndarray) -> np.ndarray:
        return np.where(r > self.band_, 1, np.where(r < -self.band_, -1, 0)).astype(np.int8)

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        self.lookback_ = pick_lookback(train.feature_names, self.horizon, self.config.lookback)
        r = self._trailing(train)
        y = train.classes()
        if self.config.band is not None:
            self.band_ = float(self.config.band)
        else:
            flat_share = float(np.mean(y == 1))
            self.band_ = float(np.quantile(np.abs(r), flat_share)) if flat_share > 0 else 0.0
        calls = self._calls(r) + 1  # 0/1/2
        table = np.ones((3, 3))  # Laplace: one pseudo-count per (call, label)
        np.add.at(table, (calls, y), 1.0)
        self.table_ = table / table.sum(axis=1, keepdims=True)  # [call, class] probabilities
        self.scale_ = float(np.std(r)) or 1.0

    def _predict(self, samples: Samples) -> Predictions:
        r = self._trailing(samples)
        calls = self._calls(r)
        return Predictions(calls, self.table_[calls + 1], np.tanh(r / self.scale_))

    def _state_meta(self) -> dict:
        return {"lookback": self.lookback_, "band": self.band_, "table": self.table_.tolist(), "scale": self.scale_}

    def _save_state(self, directory: Path) -> None:
        pass  # everything is in model.json

    def _load_state(self, directory: Path, state: dict) -> None:
        self.lookback_ = int(state["lookback"])
        self.band_ = float(state["band"])
        self.table_ = np.asarray(state["table"], dtype=np.float64)
        self.scale_ = float(state["scale"])
