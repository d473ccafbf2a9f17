"""The model contract every registered model follows, and the predictions they all return.

Contract (docs/models.md, "The registry" and "Adding a model"):

- the constructor stores params only (``config``, ``horizon``, ``seed``); fitted state ends in ``_``;
- ``fit(train, val) -> self`` on :class:`~trendfactory.models.data.Samples`;
- ``predict(samples) -> Predictions`` (raises before ``fit``);
- ``save(dir)`` writes ``model.json`` (metadata) plus the model's own safe-format files, then
  ``manifest.json`` (size and SHA-256 of each); ``TrendModel.load(dir)`` verifies the manifest,
  rebuilds the right class from the registry and gives identical predictions. No pickle, no joblib.

A model implements the four hooks ``_fit``, ``_predict``, ``_save_state`` and ``_load_state``;
everything else (checks, timing, metadata) lives here once. A stochastic model (``stochastic``:
its fit depends on the seed) is refitted with ``evaluate.seeds`` seeds by the train stage.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import pandas as pd

from trendfactory.errors import ArtifactError, TrendfactoryError, first_line
from trendfactory.models.common.manifest import MANIFEST_FILE, verify_manifest, write_manifest
from trendfactory.models.data import CLASSES, Samples
from trendfactory.params import config_to_dict

log = logging.getLogger("trendfactory")

METADATA_FILE = "model.json"
PREDICTION_COLUMNS = ("symbol", "datetime", "horizon", "pred", "p_down", "p_flat", "p_up", "score")


class NotFittedError(TrendfactoryError, RuntimeError):
    """predict/save called before fit."""


@dataclass
class FitContext:
    """What the caller of ``fit`` may hand a model, none of it needed: ``on_epoch`` receives
    each epoch's metrics as a model trains (iterative models that report live), and
    ``checkpoint_dir`` is where a model may keep checkpoints to resume an interrupted fit."""

    on_epoch: Callable[[dict[str, float]], None] | None = None
    checkpoint_dir: Path | None = None


@dataclass
class Predictions:
    """What every model returns for n samples.

    pred: [n] int8 in {-1, 0, +1}; proba: [n, 3] float64 (down, flat, up), rows sum to 1;
    score: [n] float64 in [-1, 1] (p_up - p_down unless the model predicts a score directly).
    """

    pred: np.ndarray
    proba: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.pred)
        self.pred = np.asarray(self.pred, dtype=np.int8)
        self.proba = np.asarray(self.proba, dtype=np.float64)
        self.score = np.asarray(self.score, dtype=np.float64)
        if self.proba.shape != (n, 3) or self.score.shape != (n,):
            raise ValueError(f"predictions: pred {self.pred.shape}, proba {self.proba.shape}, score {self.score.shape}; expected [n], [n, 3], [n]")

    @classmethod
    def from_proba(cls, proba: np.ndarray, score: np.ndarray | None = None) -> "Predictions":
        """Class = argmax of the probabilities (renormalised); score defaults to p_up - p_down."""
        p = np.asarray(proba, dtype=np.float64)
        p = np.clip(p, 0.0, None)
        p = p / p.sum(axis=1, keepdims=True)
        pred = CLASSES[np.argmax(p, axis=1)]
        if score is None:
            score = p[:, 2] - p[:, 0]
        return cls(pred=pred, proba=p, score=np.clip(np.asarray(score, dtype=np.float64), -1.0, 1.0))

    def __len__(self) -> int:
        return int(self.pred.shape[0])

    def to_frame(self, keys: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """The predictions data contract: symbol, datetime, horizon, pred, p_down, p_flat, p_up, score."""
        if len(keys) != len(self):
            raise ValueError(f"{len(keys)} keys for {len(self)} predictions")
        return pd.DataFrame(
            {
                "symbol": keys["symbol"].astype(str).to_numpy(),
                "datetime": keys["datetime"].to_numpy(),
                "horizon": np.full(len(self), int(horizon), dtype=np.int32),
                "pred": self.pred,
                "p_down": self.proba[:, 0],
                "p_flat": self.proba[:, 1],
                "p_up": self.proba[:, 2],
                "score": self.score,
            }
        )


def _no_registry(name: str, config: Mapping) -> tuple[type, Any]:
    raise TrendfactoryError("trendfactory.models.registry is not loaded; import trendfactory.models")


# How a saved model's name and config become its class and typed config. The registry installs
# it when it loads (``import trendfactory.models`` loads the registry before anyone can call
# ``load``), so that this module does not import the registry, which imports it.
_saved_model: Callable[[str, Mapping], tuple[type, Any]] = _no_registry


def set_saved_model_resolver(resolve: Callable[[str, Mapping], tuple[type, Any]]) -> None:
    """Called once by models.registry: ``resolve(name, config) -> (model class, typed config)``."""
    global _saved_model
    _saved_model = resolve


class TrendModel:
    """Base class of every model (see module docstring). Subclasses are registered with
    :func:`trendfactory.models.registry.register`, which fills the class attributes."""

    family: ClassVar[str] = ""
    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # tabular | network | joint (see the registry)
    config_class: ClassVar[type] = type(None)  # the models.<name> schema, declared at registration
    needs_sequences: ClassVar[bool] = False
    can_use_gpu: ClassVar[bool] = False
    uses_trainer: ClassVar[bool] = False  # trains through the shared torch trainer (reads `train`)
    joint: ClassVar[bool] = False  # one fit serves every horizon (saved once, not per horizon)
    # its fit depends on the seed (random init, dropout, row/feature subsampling): the train stage
    # refits it with `evaluate.seeds` seeds per fold; deterministic models are fitted once
    stochastic: ClassVar[bool] = False
    # hyperparameters an Optuna study may search (run.tune): {key: Float | Int | Choice} of
    # trendfactory.models.search, keys the config's fields or ``train.<key>`` for the trainer
    search_space: ClassVar[dict] = {}
    base_name: ClassVar[str | None] = None  # a tuned variant's model (registry.tuned_variant)

    @classmethod
    def threads(cls, config: Any) -> int:
        """CPU threads one fit uses: what a fan-out task of it reserves (trendfactory.parallel).
        The tree libraries' ``n_jobs``; a network fit runs on one torch thread (set by the train
        stage, so its numbers are the same alone or beside other fits); one otherwise."""
        return 1 if cls.uses_trainer else int(getattr(config, "n_jobs", 1))

    def __init__(self, config: Any = None, *, horizon: int = 5, seed: int = 0) -> None:
        self.config = config if config is not None else self.config_class()
        self.horizon = int(horizon)
        self.seed = int(seed)

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "unfitted"
        return f"{type(self).__name__}({self.family}:{self.name}, h={self.horizon}, {state})"

    # ---- the contract ------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return getattr(self, "feature_names_", None) is not None

    def fit(self, train: Samples, val: Samples, context: FitContext | None = None) -> "TrendModel":
        """Fit on ``train``; ``val`` is for early stopping and monitoring only."""
        for what, s in (("train", train), ("val", val)):
            if not s.labelled:
                raise ValueError(f"fit: the {what} samples have no labels")
            if s.horizon != self.horizon:
                raise ValueError(f"fit: {what} samples are for horizon {s.horizon}, this model for {self.horizon}")
        if len(train) == 0:
            raise TrendfactoryError(f"fit: no train samples for horizon {self.horizon}; check the split boundaries and window.seq_len")
        if list(val.feature_names) != list(train.feature_names):
            raise ValueError("fit: train and val have different feature columns; rerun featurize and window")
        self.history_: dict[str, list[float]] = {}
        self.best_iteration_: int | None = None
        t0 = time.perf_counter()
        self._fit(train, val, context or FitContext())
        self.fit_seconds_ = time.perf_counter() - t0
        self.feature_names_ = list(train.feature_names)
        return self

    def predict(self, samples: Samples) -> Predictions:
        """Predictions for every sample (raises before fit)."""
        self._check_fitted("predict")
        if list(samples.feature_names) != self.feature_names_:
            missing = sorted(set(self.feature_names_) - set(samples.feature_names))
            extra = sorted(set(samples.feature_names) - set(self.feature_names_))
            raise TrendfactoryError(
                f"predict: feature columns differ from the ones {self.name} was trained on (missing {missing[:5]}, unexpected {extra[:5]}); featurize the data with the training params"
            )
        if len(samples) == 0:
            return Predictions(np.zeros(0, np.int8), np.zeros((0, 3)), np.zeros(0))
        out = self._predict(samples)
        if len(out) != len(samples):
            raise RuntimeError(f"{self.name} returned {len(out)} predictions for {len(samples)} samples")
        return out

    def save(self, directory: str | Path) -> None:
        """model.json + the model's own files in ``directory`` (created if needed), then
        manifest.json over all of them (written last: a save that did not finish has none)."""
        self._check_fitted("save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # an old manifest must not vouch for a directory this save is half-way through rewriting
        (directory / MANIFEST_FILE).unlink(missing_ok=True)
        meta = {
            "model": f"{self.family}:{self.name}",
            "horizon": self.horizon,
            "seed": self.seed,
            "config": config_to_dict(self.config),
            "feature_names": self.feature_names_,
            "best_iteration": self.best_iteration_,
            "state": self._state_meta(),
        }
        self._save_state(directory)
        (directory / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=_json_default) + "\n")
        write_manifest(directory)

    @classmethod
    def load(cls, directory: str | Path) -> "TrendModel":
        """Rebuild a saved model (any registered class; ``cls`` narrows the expected one).

        Every file is checked against manifest.json before any is read: a damaged file is
        refused with one line (:class:`ArtifactError`) instead of crashing a model library."""
        directory = Path(directory)
        meta_path = directory / METADATA_FILE
        if not meta_path.is_file() and not (directory / MANIFEST_FILE).is_file():
            raise ArtifactError(f"{meta_path}: not a saved model; run the train stage first")
        verify_manifest(directory)
        meta = _read_metadata(meta_path)
        model_cls, config = _saved_model(meta["model"], meta["config"])
        if cls is not TrendModel and not issubclass(model_cls, cls):
            raise TrendfactoryError(f"{directory}: holds a {meta['model']} model, not {cls.family}:{cls.name}")

        model = model_cls(config, horizon=meta["horizon"], seed=meta["seed"])
        model.history_ = {}
        model.best_iteration_ = meta.get("best_iteration")
        model.fit_seconds_ = 0.0  # timings are logged, never saved: the saved model is hashed by DVC
        try:
            model._load_state(directory, meta.get("state", {}))
        except TrendfactoryError:
            raise
        except Exception as exc:  # noqa: BLE001 -- any library's parse error, re-raised as one line with its cause
            # the bytes are the ones save wrote (verified above): the reader is what changed
            raise ArtifactError(
                f"{directory}: its files match {MANIFEST_FILE} but {meta['model']} cannot read them "
                f"({type(exc).__name__}: {first_line(exc)}); saved by another version of trendfactory or its libraries? "
                f"retrain it with `dvc repro`"
            ) from exc
        model.feature_names_ = list(meta["feature_names"])
        return model

    # ---- what a model may report -------------------------------------------------------------
    def feature_importance(self) -> dict[str, float] | None:
        """Feature -> importance (normalised to sum 1) where the model has one, else None."""
        return None

    # ---- hooks -------------------------------------------------------------------------------
    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        raise NotImplementedError

    def _predict(self, samples: Samples) -> Predictions:
        raise NotImplementedError

    def _save_state(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_state(self, directory: Path, state: dict) -> None:
        raise NotImplementedError

    def _state_meta(self) -> dict:
        """Small JSON-able fitted state saved in model.json (and handed back to _load_state)."""
        return {}

    # ---- helpers -----------------------------------------------------------------------------
    def _check_fitted(self, what: str) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{what}: this {self.family}:{self.name} model is not fitted; call fit(train, val) or load a saved one")

    def _log_history(self, **series: list[float]) -> None:
        """Record per-iteration curves, e.g. ``train_loss=[...]`` (logged by the train stage)."""
        for k, v in series.items():
            self.history_[k] = [float(x) for x in v]


_METADATA_KEYS = {"model": str, "horizon": int, "seed": int, "config": dict, "feature_names": list}


def _read_metadata(path: Path) -> dict:
    """model.json as a dict with its required keys, or ArtifactError. It has been verified
    against the manifest, so this fails only for a file written by other code."""
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable ({type(exc).__name__}); retrain it with `dvc repro`") from None
    bad = [k for k, t in _METADATA_KEYS.items() if not isinstance(meta, dict) or not isinstance(meta.get(k), t)]
    if bad:
        raise ArtifactError(f"{path}: not a model record (missing or mistyped {', '.join(bad)}); retrain it with `dvc repro`")
    return meta


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


REQUIRED_HOOKS = ("_fit", "_predict", "_save_state", "_load_state")
