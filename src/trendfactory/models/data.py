"""What a model sees of one split at one horizon: the samples (window end rows) and readers.

A :class:`Samples` wraps a :class:`~trendfactory.windows.reader.WindowSplit` and a horizon. Its
samples are the split's valid window ends for that horizon (every sample has a label and a
forward return), or, for scoring new data, every valid window end (no labels). Models pull
what they need from it: tabular rows (the last row of each window plus lags), whole windows
for sequence models, labels, the regression target ``score_h``, and the keys predictions are
written under. Nothing is copied until a model asks for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.paths import WINDOWS_DIR
from trendfactory.windows.reader import WindowSplit

CLASSES = np.array([-1, 0, 1], dtype=np.int8)  # column order of every probability matrix


class Samples:
    """The samples of one split at one horizon (see module docstring)."""

    def __init__(self, split: WindowSplit, horizon: int, ends: np.ndarray | None = None, labelled: bool = True) -> None:
        self.split = split
        self.horizon = int(horizon)
        self.labelled = bool(labelled)
        if ends is None:
            ends = split.index(self.horizon) if labelled else split.index(None)
        self.ends = np.asarray(ends, dtype=np.int64)  # [n] window end rows

    @classmethod
    def open(cls, directory: str | Path, horizon: int, fold: int | None = None, role: str | None = None) -> "Samples":
        """Labelled samples of the window store at ``directory`` for ``horizon`` (of one fold's
        ``role`` -- 'train' | 'val' | 'test' -- for a walk-forward store)."""
        return cls(WindowSplit.open(directory, fold, role), horizon)

    def __len__(self) -> int:
        return int(self.ends.size)

    def __repr__(self) -> str:
        where = self.split.directory.name if self.split.fold is None else f"{self.split.directory.name} fold {self.split.fold} {self.split.role}"
        return f"Samples({where}, h={self.horizon}, n={len(self)}, labelled={self.labelled})"

    def subset(self, positions: np.ndarray) -> "Samples":
        """The samples at ``positions`` (into this object's order)."""
        return Samples(self.split, self.horizon, self.ends[np.asarray(positions)], self.labelled)

    def permuted(self, columns: Sequence[str], perm: np.ndarray) -> "Samples":
        """These samples with feature ``columns`` taken from sample ``perm[i]`` instead of i
        (in every row of the window): the input of permutation importance. Targets stay."""
        return _PermutedSamples(self, columns, perm)

    # ---- shapes ------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return self.split.feature_names

    @property
    def n_features(self) -> int:
        return self.split.n_features

    @property
    def seq_len(self) -> int:
        return self.split.seq_len

    # ---- inputs ------------------------------------------------------------------------------
    def tabular(self, lags: Sequence[int] = ()) -> np.ndarray:
        """[n, F*(1+len(lags))] float32: each window's last row plus its lagged rows."""
        return self.split.tabular_rows(self.ends, lags)

    def tabular_feature_names(self, lags: Sequence[int] = ()) -> list[str]:
        return self.split.tabular_feature_names(lags)

    def windows(self, positions: np.ndarray | slice | None = None) -> np.ndarray:
        """[b, seq_len, F] float32 windows of the samples at ``positions`` (all when None)."""
        ends = self.ends if positions is None else self.ends[positions]
        return self.split.windows(ends)

    def raw_feature(self, name: str) -> np.ndarray:
        """[n] float64 feature ``name`` at each window end, back in its original units."""
        if name not in self.feature_names:
            raise KeyError(f"feature {name!r} is not in the window store {self.split.directory}")
        j = self.feature_names.index(name)
        return self.split.unscale(name, self.split.features[self.ends, j])

    # ---- targets -----------------------------------------------------------------------------
    def _need_labels(self) -> None:
        if not self.labelled:
            raise ValueError(f"{self!r} holds unlabelled samples (new data); there are no targets to read")

    def labels(self) -> np.ndarray:
        """[n] int8 in {-1, 0, +1}."""
        self._need_labels()
        return np.asarray(self.split.labels(self.horizon)[self.ends])

    def classes(self) -> np.ndarray:
        """[n] int64 class indices 0/1/2 (down/flat/up): the column order of probabilities."""
        return self.labels().astype(np.int64) + 1

    def scores(self) -> np.ndarray:
        """[n] float32 regression target ``score_h`` in [-1, 1]."""
        self._need_labels()
        return np.asarray(self.split.scores(self.horizon)[self.ends])

    def returns(self) -> np.ndarray:
        """[n] float32 forward return ``ret_h`` of a trade on each sample."""
        self._need_labels()
        return np.asarray(self.split.returns(self.horizon)[self.ends])

    def keys(self) -> pd.DataFrame:
        """symbol, datetime of each sample: what its prediction is keyed by."""
        return self.split.frame(self.ends)

    # ---- identity ----------------------------------------------------------------------------
    def content_hash(self, horizons: Sequence[int] | None = None, ends: np.ndarray | None = None) -> str:
        """Hex SHA-256 of what a fit reads from these samples: the feature matrix as the model
        sees it (a fold view's scaled matrix, every row: windows reach back ``seq_len`` rows),
        its names and the window length, the window end rows (``ends``, default this object's),
        their dates, and -- when labelled -- the label, score and forward return at those ends
        for each of ``horizons`` (default this object's horizon).

        Resuming a fit needs the same data, not just the same row counts: a change of the
        labelling params keeps every count and changes the labels. One pass over contiguous
        bytes (~30 MB for 140k x 56 float32 features) costs tens of milliseconds."""
        ends = self.ends if ends is None else np.asarray(ends, dtype=np.int64)
        horizons = [self.horizon] if horizons is None else [int(h) for h in horizons]
        h = hashlib.sha256()
        h.update(repr((list(self.feature_names), self.seq_len, horizons, self.labelled)).encode())
        _hash_array(h, self.split.features)
        _hash_array(h, ends)
        _hash_array(h, pd.DatetimeIndex(self.split.frame(ends)["datetime"]).asi8)  # UTC ns, tz or not
        if self.labelled:
            for hz in horizons:
                for values in (self.split.labels(hz), self.split.scores(hz), self.split.returns(hz)):
                    _hash_array(h, np.asarray(values)[ends])
        self._hash_extra(h)
        return h.hexdigest()

    def _hash_extra(self, h: "hashlib._Hash") -> None:
        """What a subclass changes about the inputs (see _PermutedSamples); nothing here."""


class _PermutedSamples(Samples):
    """See :meth:`Samples.permuted`."""

    def __init__(self, base: Samples, columns: Sequence[str], perm: np.ndarray) -> None:
        super().__init__(base.split, base.horizon, base.ends, base.labelled)
        unknown = [c for c in columns if c not in self.feature_names]
        if unknown:
            raise KeyError(f"permuted: unknown feature columns {unknown}")
        self.perm = np.asarray(perm, dtype=np.int64)
        if sorted(self.perm.tolist()) != list(range(len(self))):
            raise ValueError("permuted: perm must be a permutation of range(len(samples))")
        self.columns = list(columns)
        self.cols = np.array([self.feature_names.index(c) for c in columns], dtype=np.int64)  # [k]

    def tabular(self, lags: Sequence[int] = ()) -> np.ndarray:
        X = super().tabular(lags)  # [n, F*(1+len(lags))]: the row, then one block of F per lag
        F = self.n_features
        idx = (self.cols[None, :] + F * np.arange(1 + len(lags))[:, None]).ravel()
        X[:, idx] = X[self.perm][:, idx]
        return X

    def windows(self, positions: np.ndarray | slice | None = None) -> np.ndarray:
        pos = np.arange(len(self))[positions] if positions is not None else np.arange(len(self))
        x = self.split.windows(self.ends[pos])  # [b, L, F]
        donor = self.split.windows(self.ends[self.perm[pos]])  # [b, L, F]
        x[:, :, self.cols] = donor[:, :, self.cols]
        return x

    def raw_feature(self, name: str) -> np.ndarray:
        v = super().raw_feature(name)
        return v[self.perm] if name in self.columns else v

    def _hash_extra(self, h: "hashlib._Hash") -> None:
        # the permuted columns and the permutation change every input row the model sees
        h.update(repr(self.columns).encode())
        _hash_array(h, self.perm)


def _hash_array(h: "hashlib._Hash", values: np.ndarray) -> None:
    """Feed an array's dtype, shape and bytes (C order) to ``h``: equal arrays, equal digests."""
    a = np.ascontiguousarray(values)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8))  # the bytes in place: no copy of a 30 MB matrix


def class_weights(classes: np.ndarray, mode: str) -> np.ndarray | None:
    """Per-sample weights for ``class_weight`` ('none' -> None; 'balanced' -> n / (3 n_c))."""
    if mode == "none":
        return None
    if mode != "balanced":
        raise ValueError(f"class_weight: got {mode!r}, expected 'none' or 'balanced'")
    counts = np.bincount(classes, minlength=3).astype(np.float64)
    per_class = np.where(counts > 0, len(classes) / (3.0 * np.maximum(counts, 1.0)), 0.0)
    return per_class[classes]


def load_split(role: str, horizon: int, fold: int, store: Path = WINDOWS_DIR) -> Samples:
    """Labelled samples of one fold's ``role`` ('train' | 'val' | 'test') of the pipeline's window
    store, or a one-line error naming the fix."""
    try:
        return Samples.open(store, horizon, fold, role)
    except (FileNotFoundError, ValueError) as exc:
        raise TrendfactoryError(f"{exc}") from None
    except KeyError:
        have = WindowSplit.open(store).horizons
        raise TrendfactoryError(f"--horizon {horizon}: the window store {store} has horizons {have}; use one of them or add it to label.horizons") from None
