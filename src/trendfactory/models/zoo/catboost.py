"""Boosting: CatBoost (MultiClass, symmetric trees; task_type GPU when the device is CUDA).

Saved as CatBoost's ``.cbm``; ``use_best_model`` keeps the trees up to the best validation
iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from trendfactory.models.base import FitContext, Predictions
from trendfactory.models.common.boosting import PROGRESS_EVERY, BoostingConfig, BoostingModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.models.search import Float, Int
from trendfactory.params import NON_NEGATIVE, POSITIVE, check, pos_field

MODEL_FILE = "model.cbm"


def catboost_params(config, seed: int, device: str) -> dict:
    """CatBoostClassifier keyword arguments for a models.catboost config (shared with the benchmark)."""
    return {
        "loss_function": "MultiClass",
        "iterations": config.iterations,
        "learning_rate": config.learning_rate,
        "depth": config.depth,
        "l2_leaf_reg": config.l2_leaf_reg,
        "random_seed": seed,
        "thread_count": config.n_jobs,
        "task_type": "GPU" if device == "cuda" else "CPU",
        "early_stopping_rounds": config.early_stopping_rounds,
        "use_best_model": True,
        "verbose": PROGRESS_EVERY,
        "allow_writing_files": False,
    }


@dataclass(frozen=True)
class CatBoostConfig(BoostingConfig):
    iterations: int = pos_field(1000)
    learning_rate: float = field(default=0.05, metadata=POSITIVE)
    depth: int = field(default=6, metadata=check(lambda v: 1 <= v <= 16, "an integer in 1..16"))
    l2_leaf_reg: float = field(default=3.0, metadata=NON_NEGATIVE)


@register("boosting", "catboost", kind="tabular", config=CatBoostConfig, can_use_gpu=True)
class CatBoost(BoostingModel):
    """CatBoost multiclass symmetric trees with early stopping on validation log loss."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        "learning_rate": Float(0.01, 0.2, log=True),
        "depth": Int(3, 8),
        "l2_leaf_reg": Float(1.0, 30.0, log=True),
    }

    stochastic: ClassVar[bool] = True  # Bayesian bootstrap, random split strength

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        from catboost import CatBoostClassifier, Pool

        d = self._data(train, val)
        self.model_ = CatBoostClassifier(**catboost_params(self.config, self.seed, self._device()))
        self.model_.fit(Pool(d.X, d.y, weight=d.w, feature_names=d.names), eval_set=Pool(d.X_val, d.y_val, feature_names=d.names))
        evals = self.model_.get_evals_result()
        self._record(evals["learn"]["MultiClass"], evals["validation"]["MultiClass"], self.model_.get_best_iteration())

    def _proba(self, X: np.ndarray) -> np.ndarray:
        p = self.model_.predict_proba(X)
        out = np.zeros((len(X), 3))
        out[:, np.asarray(self.model_.classes_, dtype=np.int64)] = p
        return out

    def _predict(self, samples: Samples) -> Predictions:
        return Predictions.from_proba(self._proba(samples.tabular(self.config.lags)))

    def _save_state(self, directory: Path) -> None:
        # the wall-clock finish time and a random GUID would make every refit a new file for
        # DVC's hash; nothing reads them back
        metadata = self.model_.get_metadata()
        for volatile in ("train_finish_time", "model_guid"):
            if volatile in metadata:
                del metadata[volatile]
        self.model_.save_model(str(directory / MODEL_FILE), format="cbm")

    def _load_state(self, directory: Path, state: dict) -> None:
        from catboost import CatBoostClassifier

        self.model_ = CatBoostClassifier()
        self.model_.load_model(str(directory / MODEL_FILE), format="cbm")

    def _gains(self) -> dict[str, float]:
        return dict(zip(self.model_.feature_names_, map(float, self.model_.get_feature_importance())))
