"""Classical: multinomial logistic regression on standardised inputs (scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trendfactory.models.common.sklearn_model import SklearnModel
from trendfactory.models.registry import register


@register("classical", "logistic")
class Logistic(SklearnModel):
    """Multinomial logistic regression (L2, lbfgs) after a train-fitted StandardScaler."""

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
