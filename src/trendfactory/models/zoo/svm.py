"""Classical: a support vector machine with calibrated probabilities (scikit-learn).

A kernel SVM's exact solver grows with the square of the rows (the train split has ~10^5 of
them), so the RBF kernel is approximated with a Nyström feature map (Williams & Seeger, 2001:
``n_components`` landmark rows drawn with the seed) and a linear SVM (LinearSVC, one-vs-rest
squared hinge) is fitted on it; ``kernel: linear`` skips the map. An SVM gives margins, not
probabilities: Platt's sigmoid on out-of-fold margins (CalibratedClassifierCV over
``calibration_folds`` consecutive blocks of the train split, never validation) turns them into
per-class probabilities, normalised to sum to one. Saved with skops (no pickle) like the other
scikit-learn models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from trendfactory.models.common.sklearn_model import SklearnModel
from trendfactory.models.registry import register
from trendfactory.models.search import Float, Int
from trendfactory.params import CLASS_WEIGHT, LAGS, POSITIVE, check, choice, pos_field


@dataclass(frozen=True)
class SVMConfig:
    C: float = field(default=0.05, metadata=POSITIVE)  # inverse regularisation of the linear SVM
    kernel: str = field(default="rbf", metadata=choice("rbf", "linear"))  # rbf: the Nyström approximation
    gamma: float | None = field(default=None, metadata=POSITIVE)  # RBF width; null: 1 / n_features
    n_components: int = pos_field(300)  # Nyström landmarks (features of the approximate kernel map)
    calibration_folds: int = field(default=3, metadata=check(lambda v: v >= 2, "an integer >= 2"))
    max_iter: int = pos_field(2000)  # LinearSVC coordinate-descent iterations
    class_weight: str = field(default="none", metadata=CLASS_WEIGHT)
    lags: tuple[int, ...] = field(default=(), metadata=LAGS)


@register("classical", "svm", kind="tabular", config=SVMConfig)
class SVM(SklearnModel):
    """Linear SVM on a Nyström RBF feature map, Platt-calibrated probabilities."""

    search_space: ClassVar[dict] = {  # run.tune (models.search)
        "C": Float(1e-3, 1.0, log=True),
        "n_components": Int(100, 600, log=True),
    }

    stochastic: ClassVar[bool] = True  # the Nyström landmarks are drawn with the seed

    def _make_estimator(self) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.kernel_approximation import Nystroem
        from sklearn.model_selection import KFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        c = self.config
        steps: list[Any] = [StandardScaler()]
        if c.kernel == "rbf":
            steps.append(Nystroem(kernel="rbf", gamma=c.gamma, n_components=c.n_components, random_state=self.seed))
        svm = LinearSVC(C=c.C, max_iter=c.max_iter, class_weight=None if c.class_weight == "none" else "balanced", random_state=self.seed)
        # consecutive blocks (no shuffle): the rows are in time order, and each block's margins
        # come from an SVM fitted on the other blocks
        steps.append(CalibratedClassifierCV(svm, method="sigmoid", cv=KFold(c.calibration_folds), ensemble=True))
        return make_pipeline(*steps)
