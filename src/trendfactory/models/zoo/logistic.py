"""Classical: multinomial logistic regression on standardised inputs (scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Any

import numpy as np

from trendfactory.models.common.sklearn_model import SklearnModel
from trendfactory.models.registry import register
from trendfactory.models.search import Float
from trendfactory.params import CLASS_WEIGHT, LAGS, POSITIVE, pos_field


@dataclass(frozen=True)
class LogisticConfig:
    C: float = field(default=0.05, metadata=POSITIVE)
    max_iter: int = pos_field(300)
    class_weight: str = field(default="none", metadata=CLASS_WEIGHT)
    lags: tuple[int, ...] = field(default=(), metadata=LAGS)


@register("classical", "logistic", kind="tabular", config=LogisticConfig)
class Logistic(SklearnModel):
    """Multinomial logistic regression (L2, lbfgs) after a train-fitted StandardScaler."""

    search_space: ClassVar[dict] = {"C": Float(1e-3, 10.0, log=True)}  # run.tune (models.search)

    def _make_estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        c = self.config
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=c.C,
                max_iter=c.max_iter,
                class_weight=None if c.class_weight == "none" else "balanced",
                random_state=self.seed,
            ),
        )

    def _importance_vector(self) -> np.ndarray | None:
        # coefficients on standardised inputs are comparable: mean |coef| over the classes
        return np.abs(self.estimator_[-1].coef_).mean(axis=0)
