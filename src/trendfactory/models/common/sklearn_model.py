"""What the scikit-learn models share: tabular inputs, safe saving with skops, probabilities.

Saved with ``skops.io`` (no pickle): on load, every type the file asks for must be a
scikit-learn or numpy type, otherwise loading stops with the offending type names.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import FitContext, Predictions, TrendModel
from trendfactory.models.data import Samples

MODEL_FILE = "model.skops"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.")


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def dump_sklearn(estimator: Any, path: Path) -> None:
    """Save with skops, rewritten so that the same estimator always gives the same bytes.

    skops names objects (``__id__``, and the ``<id>.npy`` members) by ``id()`` and stamps zip
    entries with the wall clock; DVC hashes the file, so both would change ``dvc.lock`` on every
    rerun. Ids are renumbered in the schema's own order (1, 2, …; shared objects keep sharing one
    number) and every entry gets the same timestamp.
    """
    import skops.io as sio

    src = zipfile.ZipFile(io.BytesIO(sio.dumps(estimator)))
    renumbered: dict[int, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    value = renumbered.setdefault(value, len(renumbered) + 1)
                elif key == "file" and isinstance(value, str) and value.endswith(".npy"):
                    old = int(value[: -len(".npy")])
                    value = f"{renumbered.setdefault(old, len(renumbered) + 1)}.npy"
                out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    schema = walk(json.loads(src.read("schema.json")))
    members = {"schema.json": json.dumps(schema, indent=2).encode()}
    for info in src.infolist():
        if info.filename != "schema.json":
            old = int(info.filename[: -len(".npy")])
            members[f"{renumbered[old]}.npy"] = src.read(info)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as dst:
        for name in sorted(members):
            dst.writestr(zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), members[name])


def load_sklearn(path: Path) -> Any:
    """Load a skops file, trusting only scikit-learn and numpy types."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise TrendfactoryError(f"{path}: refuses to load types outside scikit-learn/numpy: {', '.join(foreign)}")
    return sio.load(path, trusted=untrusted)


def log_loss_of(proba: np.ndarray, classes: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(classes)), classes], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


class SklearnModel(TrendModel):
    """A scikit-learn classifier on the tabular view (last row + ``config.lags``)."""

    def _make_estimator(self) -> Any:
        raise NotImplementedError

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        X, y = train.tabular(self.config.lags), train.classes()
        if len(np.unique(y)) < 2:
            raise TrendfactoryError(f"{self.name}: the train split has a single class; it needs at least two to fit")
        est = self._make_estimator()
        est.fit(X, y)
        self.estimator_ = self._for_scoring(est)
        self.tabular_names_ = train.tabular_feature_names(self.config.lags)
        # one point per curve: these models have no iterations to follow
        self._log_history(
            train_loss=[log_loss_of(self._proba(X), y)],
            val_loss=[log_loss_of(self._proba(val.tabular(self.config.lags)), val.classes())] if len(val) else [],
        )

    def _proba(self, X: np.ndarray) -> np.ndarray:
        """[n, 3] probabilities in class order 0/1/2, even if train lacked a class."""
        p = self.estimator_.predict_proba(X)
        out = np.zeros((len(X), 3))
        out[:, np.asarray(self.estimator_.classes_, dtype=np.int64)] = p
        return out

    def _predict(self, samples: Samples) -> Predictions:
        return Predictions.from_proba(self._proba(samples.tabular(self.config.lags)))

    def _save_state(self, directory: Path) -> None:
        dump_sklearn(self.estimator_, directory / MODEL_FILE)

    def _state_meta(self) -> dict:
        return {"tabular_names": self.tabular_names_}

    def _load_state(self, directory: Path, state: dict) -> None:
        self.estimator_ = self._for_scoring(load_sklearn(directory / MODEL_FILE))
        self.tabular_names_ = list(state["tabular_names"])

    def _for_scoring(self, estimator: Any) -> Any:
        """The fitted estimator as it should predict (a hook: e.g. single-threaded)."""
        return estimator

    def _importance_vector(self) -> np.ndarray | None:
        return None

    def feature_importance(self) -> dict[str, float] | None:
        v = self._importance_vector()
        if v is None or not np.isfinite(v).all() or v.sum() <= 0:
            return None
        v = v / v.sum()
        return dict(zip(self.tabular_names_, map(float, v)))
