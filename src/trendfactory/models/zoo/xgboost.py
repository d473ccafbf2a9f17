"""Boosting: XGBoost (multi:softprob, hist trees; GPU hist when the device is CUDA).

Saved as XGBoost JSON; predictions use the trees up to the best validation iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from trendfactory.models.base import FitContext, Predictions
from trendfactory.models.common.boosting import PROGRESS_EVERY, BoostingConfig, BoostingModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.models.search import Float, Int
from trendfactory.params import FRACTION, NON_NEGATIVE, POSITIVE, pos_field

MODEL_FILE = "xgboost.json"  # XGBoost's own JSON model format (model.json is the metadata)


def xgb_params(config, seed: int, device: str) -> dict:
    """The xgboost.train parameters for a models.xgboost config (shared with the benchmark)."""
    return {
        "objective": "multi:softprob",
        "num_class": 3,
        "eval_metric": "mlogloss",
        "eta": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "lambda": config.reg_lambda,
        "tree_method": "hist",
        "device": device,
        "nthread": config.n_jobs,
        "seed": seed,
    }


@dataclass(frozen=True)
class XGBoostConfig(BoostingConfig):
    n_estimators: int = pos_field(1000)
    learning_rate: float = field(default=0.03, metadata=POSITIVE)
    max_depth: int = pos_field(4)
    min_child_weight: float = field(default=20.0, metadata=NON_NEGATIVE)
    subsample: float = field(default=0.8, metadata=FRACTION)
    colsample_bytree: float = field(default=0.8, metadata=FRACTION)
    reg_lambda: float = field(default=1.0, metadata=NON_NEGATIVE)


@register("boosting", "xgboost", kind="tabular", config=XGBoostConfig, can_use_gpu=True)
class XGBoost(BoostingModel):
    """XGBoost multiclass trees with early stopping on validation log loss."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        "learning_rate": Float(0.01, 0.2, log=True),
        "max_depth": Int(2, 8),
        "min_child_weight": Float(1.0, 100.0, log=True),
        "subsample": Float(0.5, 1.0),
        "colsample_bytree": Float(0.3, 1.0),
        "reg_lambda": Float(1e-3, 30.0, log=True),
    }

    stochastic: ClassVar[bool] = True  # row and column subsampling

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        import xgboost as xgb

        d = self._data(train, val)
        dtrain = xgb.DMatrix(d.X, label=d.y, weight=d.w, feature_names=d.names)
        dval = xgb.DMatrix(d.X_val, label=d.y_val, feature_names=d.names)
        evals: dict = {}
        self.booster_ = xgb.train(
            xgb_params(self.config, self.seed, self._device()),
            dtrain,
            num_boost_round=self.config.n_estimators,
            evals=[(dtrain, "train"), (dval, "val")],
            early_stopping_rounds=self.config.early_stopping_rounds,
            evals_result=evals,
            verbose_eval=PROGRESS_EVERY,
        )
        self._record(evals["train"]["mlogloss"], evals["val"]["mlogloss"], self.booster_.best_iteration)

    def _predict(self, samples: Samples) -> Predictions:
        import xgboost as xgb

        d = xgb.DMatrix(samples.tabular(self.config.lags), feature_names=self.booster_.feature_names)
        return Predictions.from_proba(self.booster_.predict(d, iteration_range=(0, self.best_iteration_ + 1)))

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(directory / MODEL_FILE)

    def _load_state(self, directory: Path, state: dict) -> None:
        import xgboost as xgb

        self.booster_ = xgb.Booster()
        self.booster_.load_model(directory / MODEL_FILE)
        self.booster_.set_param({"device": "cpu"})  # scoring: wherever it was trained

    def _gains(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.booster_.get_score(importance_type="total_gain").items()}
