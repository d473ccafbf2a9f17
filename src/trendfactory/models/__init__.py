"""Model registry and contract: ``create("xgboost", horizon=5)``, ``list_models()``.

Every model lives in its own file under a family package (``baseline``, ``classical``,
``boosting``...) and registers itself with :func:`register`.
"""

from trendfactory.models.base import NotFittedError, Predictions, TrendModel
from trendfactory.models.data import CLASSES, Samples
from trendfactory.models.registry import create, get_model_class, list_models, model_config, model_info, register, resolve

__all__ = [
    "CLASSES",
    "NotFittedError",
    "Predictions",
    "Samples",
    "TrendModel",
    "create",
    "get_model_class",
    "list_models",
    "model_config",
    "model_info",
    "register",
    "resolve",
]
