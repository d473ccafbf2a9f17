"""Baseline: always the train split's most frequent class, with the train class prior."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trendfactory.models.base import FitContext, Predictions, TrendModel
from trendfactory.models.data import CLASSES, Samples
from trendfactory.models.registry import register


@dataclass(frozen=True)
class MajorityConfig:
    """No keys: always the train split's most frequent class, with the train class prior."""


@register("baseline", "majority", kind="tabular", config=MajorityConfig)
class Majority(TrendModel):
    """Majority class of the train split; probabilities = the train class prior."""

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        counts = np.bincount(train.classes(), minlength=3).astype(np.float64)
        self.prior_ = counts / counts.sum()

    def _predict(self, samples: Samples) -> Predictions:
        n = len(samples)
        proba = np.broadcast_to(self.prior_, (n, 3)).copy()
        # One constant call for everyone: its score carries no ranking, so IC is undefined.
        return Predictions(np.full(n, CLASSES[np.argmax(self.prior_)]), proba, np.full(n, self.prior_[2] - self.prior_[0]))

    def _state_meta(self) -> dict:
        return {"prior": self.prior_.tolist()}

    def _save_state(self, directory: Path) -> None:
        pass  # everything is in model.json

    def _load_state(self, directory: Path, state: dict) -> None:
        self.prior_ = np.asarray(state["prior"], dtype=np.float64)
