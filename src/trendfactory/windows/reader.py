"""Read a window store (written by :func:`trendfactory.windows.store.build_split`).

Three ways to feed a model from one split directory, all over the memory-mapped features
(nothing is copied until a batch is gathered; ``[N, seq_len, F]`` is never materialised):

- tabular models:   ``split.tabular(h, lags=(1, 5))`` -> X [n, F*(1+len(lags))], y, meta
- sequence models:  ``split.windows(ends)`` -> [B, seq_len, F] for a batch of window end rows
- torch:            :mod:`trendfactory.windows.torch_data` (``WindowDataset``, ``BatchGatherer``),
                    kept apart so tabular models never import torch

Window ``e`` (an end row from ``split.index(h)``) is feature rows ``e-seq_len+1 .. e``: same
symbol, all finite, nothing after row ``e``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.paths import WINDOWS_DIR
from trendfactory.windows.store import FORMAT_VERSION

__all__ = ["WindowSplit", "open_store"]


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the window store; rerun the window stage")
    return np.load(path, mmap_mode="r")


_SCALED: dict[tuple, np.ndarray] = {}  # (store dir, its meta mtime, fold) -> scaled features; one fold at a time
# A fold's scaled matrix larger than this is written to an unlinked temp file and memory-mapped
# (pages the OS can drop) instead of held in RAM: a large universe's fits stay within memory.
# The default data (~45 MB) stays in RAM. TMPDIR says where the file goes.
SPILL_BYTES = 1 << 30


def _scaled_features(split: "WindowSplit", fold: int) -> np.ndarray:
    """[N, F] float32: the store's unscaled features through fold ``fold``'s scaler (z-score
    columns clipped to +-clip, {-1,0,1} signal columns as they are). Cached per fold, so a
    fold's train, val and test views share one matrix; NaN stays NaN (row validity is unchanged)."""
    meta_path = split.directory / "meta.json"
    key = (str(split.directory.resolve()), meta_path.stat().st_mtime_ns, fold)
    hit = _SCALED.get(key)
    if hit is not None:
        return hit
    _SCALED.clear()  # one fold's matrix at a time bounds memory to one [N, F] copy
    from trendfactory.features.splits import standardise  # the one scaling rule

    spec = split.meta["folds"][fold]
    params = np.array([spec["scaler"][c] for c in split.feature_names], dtype=np.float64)  # [F, 3]: mean, std, z-score?
    mean, std, zscore = params[:, 0], params[:, 1], params[:, 2] > 0
    raw = split.features  # [N, F] float32 memmap (unscaled)
    clip = float(spec["clip"])
    step = 1 << 16  # rows per chunk: the float64 temporaries stay small
    blocks = ((a, standardise(raw[a : a + step], mean, std, zscore, clip)) for a in range(0, raw.shape[0], step))
    if raw.size * 4 > SPILL_BYTES:
        out = _spill(blocks, raw.shape, fold)
    else:
        out = np.empty(raw.shape, dtype=np.float32)
        for a, block in blocks:
            out[a : a + len(block)] = block
    out.setflags(write=False)
    _SCALED[key] = out
    return out


def _spill(blocks: Iterable[tuple[int, np.ndarray]], shape: tuple[int, ...], fold: int) -> np.ndarray:
    """(row, block) pairs written to an unlinked temp .npy file, returned memory-mapped read-only:
    the data lives while it is mapped and nothing is left behind, whatever happens to the process."""
    import os
    import tempfile

    from trendfactory.windows.npyfile import NpyFile  # block-wise writes: resident memory stays one block

    fd, path = tempfile.mkstemp(prefix=f"trendfactory-fold{fold}-", suffix=".npy")
    os.close(fd)
    try:
        file = NpyFile.create(Path(path), np.float32, shape)
        for a, block in blocks:
            file.write(a, block)
        return np.load(path, mmap_mode="r")
    finally:
        os.unlink(path)


class WindowSplit:
    """One split of the window store, memory-mapped read-only.

    Per-row arrays (length N, row order of the featurized parquet): ``features`` [N, F] float32,
    ``symbol_codes`` int32, ``labels(h)`` int8 (``MISSING_LABEL`` = -128 where missing),
    ``returns(h)`` / ``scores(h)`` float32. Window end rows: ``index(h)``.
    """

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self.seq_len: int = int(meta["seq_len"])
        self.horizons: list[int] = [int(h) for h in meta["horizons"]]
        self.feature_names: list[str] = list(meta["feature_names"])
        self.symbol_names: list[str] = list(meta["symbols"])
        self.datetime_tz: str | None = meta.get("datetime_tz")
        d = self.directory
        self.features: np.ndarray = _load(d / "features.npy")  # [N, F] float32, mmap "r"
        self.symbol_codes: np.ndarray = _load(d / "symbol_codes.npy")  # [N] int32
        self._datetime_ns: np.ndarray = _load(d / "datetime.npy")  # [N] int64 ns
        self._index: np.ndarray = _load(d / "index.npy")
        self._labels = {h: _load(d / f"label_h{h}.npy") for h in self.horizons}
        self._rets = {h: _load(d / f"ret_h{h}.npy") for h in self.horizons}
        self._scores = {h: _load(d / f"score_h{h}.npy") for h in self.horizons}
        self._index_h = {h: _load(d / f"index_h{h}.npy") for h in self.horizons}
        n, f = int(meta["n_rows"]), int(meta["n_features"])
        if self.features.shape != (n, f) or self.features.dtype != np.float32:
            raise ValueError(f"{d / 'features.npy'}: shape {self.features.shape} {self.features.dtype}, meta.json says ({n}, {f}) float32; rerun the window stage")

    @classmethod
    def open(cls, directory: str | Path, fold: int | None = None, role: str | None = None) -> WindowSplit:
        """Memory-map a store directory (nothing is read into memory but meta.json).

        A walk-forward store (written with folds) is opened as one fold's ``role`` view
        ('train' | 'val' | 'test'): its features scaled with that fold's train-fitted scaler
        (an in-memory [N, F] float32 matrix, shared by the views of one fold) and its window
        ends restricted to that role's rows. Without ``fold`` it gives the unscaled store."""
        split = cls._open(directory)
        if fold is None and role is None:
            return split
        return split._fold_view(fold, role)

    @classmethod
    def _open(cls, directory: str | Path) -> WindowSplit:
        d = Path(directory)
        meta_path = d / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: not a window store; run the window stage first")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}; rerun the window stage")
        return cls(d, meta)

    def __reduce__(self):
        # pickling (DataLoader workers under spawn) reopens the memmaps instead of copying them
        return (type(self).open, (str(self.directory), self.fold, self.role))

    # ---- walk-forward folds -------------------------------------------------------------------
    fold: int | None = None
    role: str | None = None

    @property
    def n_folds(self) -> int:
        """Folds of a walk-forward store (0 for a store written without folds)."""
        return len(self.meta.get("folds", []))

    def _fold_view(self, fold: int | None, role: str | None) -> WindowSplit:
        from trendfactory.features.splits import ROLE_CODES

        folds = self.meta.get("folds")
        if not folds:
            raise ValueError(f"{self.directory}: not a walk-forward store (written without folds); open it without fold/role")
        if fold is None or not 0 <= int(fold) < len(folds):
            raise ValueError(f"{self.directory}: fold {fold!r} is not one of 0..{len(folds) - 1}")
        if role not in ROLE_CODES:
            raise ValueError(f"role: got {role!r}, expected one of {', '.join(ROLE_CODES)}")
        fold = int(fold)
        spec = folds[fold]
        roles = _load(self.directory / "roles.npy")  # [N, K] int8
        is_role = np.asarray(roles[:, fold]) == ROLE_CODES[role]  # [N]
        self.features = _scaled_features(self, fold)
        self._index = self._index[is_role[self._index]]
        self._index_h = {h: idx[is_role[idx]] for h, idx in self._index_h.items()}
        self.meta = {**self.meta, "scaler": {c: v[:2] for c, v in spec["scaler"].items()}}
        self.fold, self.role = fold, role
        return self

    def __repr__(self) -> str:
        return f"WindowSplit({str(self.directory)!r}, rows={self.n_rows}, features={self.n_features}, seq_len={self.seq_len}, horizons={self.horizons}, windows={self._index.size})"

    # ---- shapes -----------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    # ---- per-row arrays ---------------------------------------------------------------------
    def _check_h(self, horizon: int) -> int:
        h = int(horizon)
        if h not in self._labels:
            raise KeyError(f"horizon {horizon!r} not in this window store ({self.directory}); available: {self.horizons}")
        return h

    def index(self, horizon: int | None = None) -> np.ndarray:
        """Window end rows (int64, ascending). ``None``: every valid window (features only);
        a horizon: those whose ``label_h`` is present and ``ret_h`` finite."""
        if horizon is None:
            return self._index
        return self._index_h[self._check_h(horizon)]

    def labels(self, horizon: int) -> np.ndarray:
        """[N] int8 labels -1/0/+1, ``MISSING_LABEL`` (-128) where missing."""
        return self._labels[self._check_h(horizon)]

    def returns(self, horizon: int) -> np.ndarray:
        """[N] float32 forward returns ``ret_h`` (NaN where missing)."""
        return self._rets[self._check_h(horizon)]

    def scores(self, horizon: int) -> np.ndarray:
        """[N] float32 target scores ``score_h`` in [-1, 1] (NaN where missing)."""
        return self._scores[self._check_h(horizon)]

    @property
    def symbols(self) -> pd.Categorical:
        """[N] symbol of each row (a Categorical over ``symbol_names``; no per-row strings)."""
        return pd.Categorical.from_codes(np.asarray(self.symbol_codes), categories=self.symbol_names)

    @property
    def datetimes(self) -> pd.DatetimeIndex:
        """[N] datetime of each row (tz-aware when the featurized data was)."""
        return self._to_datetimes(self._datetime_ns)

    def _to_datetimes(self, ns: np.ndarray) -> pd.DatetimeIndex:
        dt = pd.DatetimeIndex(np.asarray(ns).view("M8[ns]"))
        if self.datetime_tz:
            dt = dt.tz_localize("UTC").tz_convert(self.datetime_tz)
        return dt

    def frame(self, ends: np.ndarray, horizon: int | None = None) -> pd.DataFrame:
        """DataFrame of ``symbol``, ``datetime`` (and ``ret``, ``score`` for a horizon) at the
        given end rows: what a prediction for those windows is keyed by."""
        ends = np.asarray(ends, dtype=np.int64)
        cols: dict[str, Any] = {
            "symbol": pd.Categorical.from_codes(np.asarray(self.symbol_codes[ends]), categories=self.symbol_names),
            "datetime": self._to_datetimes(self._datetime_ns[ends]),
        }
        if horizon is not None:
            h = self._check_h(horizon)
            cols["ret"] = np.asarray(self._rets[h][ends])
            cols["score"] = np.asarray(self._scores[h][ends])
        return pd.DataFrame(cols)

    # ---- (a) tabular ------------------------------------------------------------------------
    def _check_lags(self, lags: Sequence[int]) -> list[int]:
        out = []
        for k in lags:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
                raise ValueError(f"lags must be ints, got {k!r} in {list(lags)}")
            if not 1 <= k < self.seq_len:
                allowed = f"1..{self.seq_len - 1}" if self.seq_len > 1 else "none"
                raise ValueError(f"lag {k} is outside the window: lags allowed with seq_len={self.seq_len}: {allowed} (a lagged row must stay in the same symbol and window)")
            out.append(int(k))
        if len(set(out)) != len(out):
            raise ValueError(f"lags has duplicates: {out}")
        return out

    def tabular_feature_names(self, lags: Sequence[int] = ()) -> list[str]:
        """Column names of ``tabular``: the features, then each lag's copies (``stk_rsi_lag5``)."""
        lags = self._check_lags(lags)
        names = list(self.feature_names)
        for k in lags:
            names += [f"{c}_lag{k}" for c in self.feature_names]
        return names

    def tabular(self, horizon: int, lags: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Last row of each window plus lagged copies of it (lag k = row e-k, inside the window).

        Returns ``X`` [n, F*(1+len(lags))] float32 (columns as ``tabular_feature_names``),
        ``y`` [n] int8 in {-1, 0, +1}, and ``meta`` (symbol, datetime, ret, score), n =
        ``len(index(horizon))``.
        """
        ends = self.index(horizon)
        X = self.tabular_rows(ends, lags)
        y = np.asarray(self.labels(horizon)[ends])
        return X, y, self.frame(ends, horizon)

    def tabular_rows(self, ends: np.ndarray, lags: Sequence[int] = ()) -> np.ndarray:
        """[n, F*(1+len(lags))] float32: row e of each window end plus rows e-k for each lag."""
        lags = self._check_lags(lags)
        ends = np.asarray(ends, dtype=np.int64)
        offsets = np.array([0, *lags], dtype=np.int64)
        rows = ends[:, None] - offsets  # [n, 1+len(lags)]
        X = self.features[rows.ravel()].reshape(len(ends), len(offsets) * self.n_features)  # one gather
        return np.ascontiguousarray(X)

    def unscale(self, name: str, values: np.ndarray) -> np.ndarray:
        """Scaled values of feature ``name`` back in its original units (float64).

        Values the scaler clipped stay at the clip edge, so magnitudes beyond it are lost but
        signs and order are kept."""
        if name not in self.meta.get("scaler", {}):
            raise KeyError(f"{self.directory}: no scaler entry for feature {name!r}; rerun the window stage")
        mean, std = self.meta["scaler"][name]
        return np.asarray(values, dtype=np.float64) * std + mean

    # ---- (b) sequences ----------------------------------------------------------------------
    def windows(self, ends: np.ndarray | Sequence[int]) -> np.ndarray:
        """[B, seq_len, F] float32 windows ending at ``ends``: one fancy-index gather."""
        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        L = self.seq_len
        if ends.size:
            lo, hi = int(ends.min()), int(ends.max())
            if lo < L - 1 or hi >= self.n_rows:
                raise IndexError(f"window ends must be in {L - 1}..{self.n_rows - 1} (seq_len={L}), got {lo}..{hi}")
            # symbols are contiguous, so a window crosses a symbol iff its ends differ
            cross = self.symbol_codes[ends] != self.symbol_codes[ends - (L - 1)]
            if cross.any():
                e = int(ends[np.argmax(cross)])
                raise ValueError(f"window ending at row {e} crosses a symbol boundary; use index()")
        if ends.size == 0:
            return np.empty((0, L, self.n_features), dtype=np.float32)
        # one fancy-index gather: window e is rows e-L+1..e, i.e. the row index tensor
        # ends[:, None] + arange(-L+1, 1); over the window view each window is one contiguous
        # L*F block, so this copies B blocks instead of B*L rows.
        return np.asarray(self.window_view()[ends - (L - 1)])

    def window_view(self) -> np.ndarray:
        """Zero-copy read-only view [N-seq_len+1, seq_len, F] of every (not nec. valid) window:
        ``view[e - seq_len + 1]`` is the window ending at row ``e``. Use with ``index()``.
        (Index it with ``view[idx]``; ``np.take`` would first copy the whole view.)"""
        if self.n_rows < self.seq_len:
            return np.empty((0, self.seq_len, self.n_features), dtype=np.float32)
        v = np.lib.stride_tricks.sliding_window_view(self.features, self.seq_len, axis=0)
        return v.transpose(0, 2, 1)  # [N-L+1, F, L] -> [N-L+1, L, F]


def open_store(path: Path = WINDOWS_DIR) -> WindowSplit:
    """The pipeline's unscaled walk-forward window store, or a one-line error naming the fix."""
    try:
        store = WindowSplit.open(path)
    except (FileNotFoundError, ValueError) as exc:
        raise TrendfactoryError(f"{exc}") from None
    if store.n_folds == 0:
        raise TrendfactoryError(f"{path}: a window store without folds; rerun `dvc repro window`")
    return store
