"""Boosting: LightGBM (multiclass, leaf-wise trees).

Saved as LightGBM's text model, truncated at the best validation iteration. PyPI's LightGBM
has no CUDA learner, so ``device: auto`` means CPU; ``cuda`` needs a CUDA build of LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import FitContext, Predictions
from trendfactory.models.common.boosting import PROGRESS_EVERY, BoostingConfig, BoostingModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.models.search import Float, Int
from trendfactory.params import FRACTION, NON_NEGATIVE, POSITIVE, check, pos_field

MODEL_FILE = "model.txt"


def lgb_params(config, seed: int, device: str) -> dict:
    """The lightgbm.train parameters for a models.lightgbm config (shared with the benchmark)."""
    return {
        "objective": "multiclass",
        "num_class": 3,
        "metric": "multi_logloss",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_child_samples,
        "bagging_fraction": config.subsample,
        "bagging_freq": 1 if config.subsample < 1.0 else 0,
        "feature_fraction": config.colsample_bytree,
        "lambda_l2": config.reg_lambda,
        "num_threads": config.n_jobs,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "device_type": device,
        "verbose": -1,
    }


@dataclass(frozen=True)
class LightGBMConfig(BoostingConfig):
    n_estimators: int = pos_field(1000)
    learning_rate: float = field(default=0.03, metadata=POSITIVE)
    num_leaves: int = field(default=15, metadata=check(lambda v: v >= 2, "an integer >= 2"))
    min_child_samples: int = pos_field(200)
    subsample: float = field(default=0.8, metadata=FRACTION)
    colsample_bytree: float = field(default=0.8, metadata=FRACTION)
    reg_lambda: float = field(default=1.0, metadata=NON_NEGATIVE)


@register("boosting", "lightgbm", kind="tabular", config=LightGBMConfig, can_use_gpu=False)  # PyPI LightGBM has no CUDA learner
class LightGBM(BoostingModel):
    """LightGBM multiclass trees with early stopping on validation log loss."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        "learning_rate": Float(0.01, 0.2, log=True),
        "num_leaves": Int(4, 64, log=True),
        "min_child_samples": Int(50, 2000, log=True),
        "subsample": Float(0.5, 1.0),
        "colsample_bytree": Float(0.3, 1.0),
        "reg_lambda": Float(1e-3, 30.0, log=True),
    }

    stochastic: ClassVar[bool] = True  # bagging and feature fraction

    def _device(self) -> str:
        # auto: the CPU learner (PyPI wheels have no CUDA one); cuda only when asked for
        return "cuda" if self.config.device == "cuda" else "cpu"

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        import lightgbm as lgb

        d = self._data(train, val)
        dtrain = lgb.Dataset(d.X, label=d.y, weight=d.w, feature_name=d.names, free_raw_data=True)
        dval = lgb.Dataset(d.X_val, label=d.y_val, reference=dtrain)
        evals: dict = {}
        try:
            self.booster_ = lgb.train(
                lgb_params(self.config, self.seed, self._device()),
                dtrain,
                num_boost_round=self.config.n_estimators,
                valid_sets=[dtrain, dval],
                valid_names=["train", "val"],
                callbacks=[
                    lgb.early_stopping(self.config.early_stopping_rounds, verbose=False),
                    lgb.record_evaluation(evals),
                    lgb.log_evaluation(PROGRESS_EVERY),
                ],
            )
        except lgb.basic.LightGBMError as exc:
            if "CUDA" in str(exc) or "GPU" in str(exc):
                raise TrendfactoryError(f"models.lightgbm.device: got 'cuda' but this LightGBM build has no CUDA learner ({exc}); use 'auto' or 'cpu'") from None
            raise
        best = max(self.booster_.best_iteration, 1) - 1  # LightGBM counts from 1
        self._record(evals["train"]["multi_logloss"], evals["val"]["multi_logloss"], best)

    def _predict(self, samples: Samples) -> Predictions:
        return Predictions.from_proba(self.booster_.predict(samples.tabular(self.config.lags), num_iteration=self.best_iteration_ + 1))

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(str(directory / MODEL_FILE), num_iteration=self.best_iteration_ + 1)

    def _load_state(self, directory: Path, state: dict) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(directory / MODEL_FILE))

    def _gains(self) -> dict[str, float]:
        gains = self.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_ + 1)
        return dict(zip(self.booster_.feature_name(), map(float, gains)))
