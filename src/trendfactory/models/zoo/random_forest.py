"""Classical: a random forest of shallow trees (scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from trendfactory.models.common.sklearn_model import SklearnModel
from trendfactory.models.registry import register
from trendfactory.models.search import Float, Int
from trendfactory.params import CLASS_WEIGHT, FRACTION, LAGS, pos_field


@dataclass(frozen=True)
class RandomForestConfig:
    n_estimators: int = pos_field(60)
    max_depth: int = pos_field(8)
    min_samples_leaf: int = pos_field(100)
    max_features: float = field(default=0.3, metadata=FRACTION)
    max_samples: float = field(default=0.5, metadata=FRACTION)
    class_weight: str = field(default="none", metadata=CLASS_WEIGHT)
    n_jobs: int = pos_field(2)
    lags: tuple[int, ...] = field(default=(), metadata=LAGS)


@register("classical", "random_forest", kind="tabular", config=RandomForestConfig)
class RandomForest(SklearnModel):
    """Random forest on bootstrapped row subsets; impurity-based feature importance."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        "max_depth": Int(3, 12),
        "min_samples_leaf": Int(20, 500, log=True),
        "max_features": Float(0.1, 0.8),
        "max_samples": Float(0.2, 0.9),
    }

    stochastic: ClassVar[bool] = True  # bootstrap rows, random feature subsets

    def _make_estimator(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        c = self.config
        return RandomForestClassifier(
            n_estimators=c.n_estimators,
            max_depth=c.max_depth,
            min_samples_leaf=c.min_samples_leaf,
            max_features=c.max_features,
            max_samples=c.max_samples,
            class_weight=None if c.class_weight == "none" else "balanced",
            n_jobs=c.n_jobs,
            random_state=self.seed,
        )

    def _for_scoring(self, estimator: Any) -> Any:
        # Threads add their trees' probabilities into one array in whatever order they finish,
        # so multi-threaded predict_proba differs in the last bits from run to run; one thread
        # keeps predictions (and the saved-model round trip) bit-identical.
        return estimator.set_params(n_jobs=1)

    def _importance_vector(self) -> np.ndarray | None:
        return np.asarray(self.estimator_.feature_importances_, dtype=np.float64)
