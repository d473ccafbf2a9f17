"""Read a window store (written by :func:`trendfactory.windows.store.build_split`).

Three ways to feed a model from one split directory, all over the memory-mapped features
(nothing is copied until a batch is gathered; ``[N, seq_len, F]`` is never materialised):

- tabular models:   ``split.tabular(h, lags=(1, 5))`` -> X [n, F*(1+len(lags))], y, meta
- sequence models:  ``split.windows(ends)`` -> [B, seq_len, F] for a batch of window end rows
- torch:            ``WindowDataset(split, h)`` (generic, one window per item) and
                    ``BatchGatherer(split, h, batch_size, ...)`` (fast: one indexing op a batch)

Window ``e`` (an end row from ``split.index(h)``) is feature rows ``e-seq_len+1 .. e``: same
symbol, all finite, nothing after row ``e``.
"""

from __future__ import annotations

import json
import warnings
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from trendfactory.windows.store import FORMAT_VERSION, MISSING_LABEL

__all__ = ["BatchGatherer", "WindowDataset", "WindowSplit"]


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the window store; rerun the window stage")
    return np.load(path, mmap_mode="r")


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
            raise ValueError(
                f"{d / 'features.npy'}: shape {self.features.shape} {self.features.dtype}, "
                f"meta.json says ({n}, {f}) float32; rerun the window stage"
            )

    @classmethod
    def open(cls, directory: str | Path) -> WindowSplit:
        """Memory-map a split directory (nothing is read into memory but meta.json)."""
        d = Path(directory)
        meta_path = d / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: not a window store; run the window stage first")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: format_version {meta.get('format_version')!r}, this code reads "
                f"{FORMAT_VERSION}; rerun the window stage"
            )
        return cls(d, meta)

    def __reduce__(self):
        # pickling (DataLoader workers under spawn) reopens the memmaps instead of copying them
        return (type(self).open, (str(self.directory),))

    def __repr__(self) -> str:
        return (
            f"WindowSplit({str(self.directory)!r}, rows={self.n_rows}, features={self.n_features}, "
            f"seq_len={self.seq_len}, horizons={self.horizons}, windows={self._index.size})"
        )

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
            raise KeyError(
                f"horizon {horizon!r} not in this window store ({self.directory}); "
                f"available: {self.horizons}"
            )
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
            "symbol": pd.Categorical.from_codes(
                np.asarray(self.symbol_codes[ends]), categories=self.symbol_names
            ),
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
                raise ValueError(
                    f"lag {k} is outside the window: lags allowed with seq_len={self.seq_len}: "
                    f"{allowed} (a lagged row must stay in the same symbol and window)"
                )
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

    def tabular(
        self, horizon: int, lags: Sequence[int] = ()
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Last row of each window plus lagged copies of it (lag k = row e-k, inside the window).

        Returns ``X`` [n, F*(1+len(lags))] float32 (columns as ``tabular_feature_names``),
        ``y`` [n] int8 in {-1, 0, +1}, and ``meta`` (symbol, datetime, ret, score), n =
        ``len(index(horizon))``.
        """
        lags = self._check_lags(lags)
        ends = self.index(horizon)
        offsets = np.array([0, *lags], dtype=np.int64)
        rows = np.asarray(ends)[:, None] - offsets  # [n, 1+len(lags)]
        X = self.features[rows.ravel()].reshape(len(ends), len(offsets) * self.n_features)  # one gather
        y = np.asarray(self.labels(horizon)[ends])
        return np.ascontiguousarray(X), y, self.frame(ends, horizon)

    # ---- (b) sequences ----------------------------------------------------------------------
    def windows(self, ends: np.ndarray | Sequence[int]) -> np.ndarray:
        """[B, seq_len, F] float32 windows ending at ``ends``: one fancy-index gather."""
        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        L = self.seq_len
        if ends.size:
            lo, hi = int(ends.min()), int(ends.max())
            if lo < L - 1 or hi >= self.n_rows:
                raise IndexError(
                    f"window ends must be in {L - 1}..{self.n_rows - 1} (seq_len={L}), "
                    f"got {lo}..{hi}"
                )
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


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------


def _features_tensor(split: WindowSplit) -> torch.Tensor:
    """torch view over the read-only memmap (zero copy; only ever read)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(split.features)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def _class_targets(split: WindowSplit, horizon: int, ends: np.ndarray) -> np.ndarray:
    lab = np.asarray(split.labels(horizon)[ends])
    if lab.size and (lab == MISSING_LABEL).any():  # cannot happen for index(horizon)
        raise ValueError("window ends include rows with a missing label")
    return lab.astype(np.int64) + 1  # -1/0/+1 -> 0/1/2


class WindowDataset(torch.utils.data.Dataset):
    """Map-style dataset: item i = (x [seq_len, F] float32, y int64 in {0,1,2} = label+1)
    for window ``split.index(horizon)[i]``. Generic; :class:`BatchGatherer` is much faster."""

    def __init__(self, split: WindowSplit, horizon: int) -> None:
        self.split = split
        self.horizon = int(horizon)
        self.ends = np.asarray(split.index(horizon))
        self._y = _class_targets(split, horizon, self.ends)

    def __len__(self) -> int:
        return int(self.ends.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        e = int(self.ends[i])
        L = self.split.seq_len
        x = np.array(self.split.features[e - L + 1 : e + 1], dtype=np.float32)  # copy
        return torch.from_numpy(x), torch.tensor(self._y[i], dtype=torch.int64)


class _BufferPool:
    """CPU batch buffers, recycled once the consumer has dropped every tensor using one.

    A fresh multi-MB tensor per batch costs page faults (the allocator returns large blocks
    to the OS), which made gathering ~5x slower. Each handed-out tensor wraps a new numpy
    view of a pooled buffer; torch holds that view until the tensor's storage (and every view
    of it, e.g. one saved for backward) is freed, so a dead weakref to it means the buffer is
    free again. Batches a consumer keeps are never overwritten.
    """

    def __init__(self, numel: int, max_buffers: int = 4) -> None:
        self.numel = numel
        self.max_buffers = max_buffers
        self._slots: list[list[Any]] = []  # [base ndarray, weakref to the live view or None]

    def get(self, numel: int) -> torch.Tensor:
        for slot in self._slots:
            if slot[1] is None or slot[1]() is None:
                view = slot[0][:numel]
                slot[1] = weakref.ref(view)
                return torch.from_numpy(view)
        base = np.empty(self.numel, dtype=np.float32)
        view = base[:numel]
        if len(self._slots) < self.max_buffers:
            self._slots.append([base, weakref.ref(view)])
        return torch.from_numpy(view)


class BatchGatherer:
    """Iterate ``(x [B, seq_len, F] float32, y [B] int64 in {0,1,2})`` batches of one split.

    Each batch is ONE ``index_select`` over a torch view of the memmap: the window view
    ``[N-L+1, L*F]`` (strides ``(F, 1)``, zero copy), indexed by ``ends - (L-1)``. That is
    the same gather as row indices ``ends[:, None] + arange(-L+1, 1)`` on ``[N, F]``, with each
    window copied as one contiguous block. On CPU the batch lands in a recycled buffer (see
    ``_BufferPool``); on CUDA in pinned host memory, then copied with ``non_blocking=True``.

    Order is deterministic: epoch k shuffles with a generator seeded from (seed, k); every
    ``iter()`` uses the current epoch and advances it (or call ``set_epoch``).
    ``with_ends=True`` also yields the [B] int64 end rows (to key predictions:
    ``split.frame(ends)``).
    """

    def __init__(
        self,
        split: WindowSplit,
        horizon: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        device: str | torch.device | None = "cpu",
        drop_last: bool = False,
        with_ends: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.split = split
        self.horizon = int(horizon)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.device = _resolve_device(device)
        self.drop_last = bool(drop_last)
        self.with_ends = bool(with_ends)
        self.epoch = 0
        ends = np.asarray(split.index(horizon), dtype=np.int64)
        self._ends = torch.from_numpy(ends.copy())
        self._y = torch.from_numpy(_class_targets(split, horizon, ends))
        L, F = split.seq_len, split.n_features
        x = _features_tensor(split)  # [N, F], shares the memmap
        n_win = max(split.n_rows - L + 1, 0)
        self._win = x.as_strided((n_win, L * F), (F, 1))  # [N-L+1, L*F] window view, zero copy
        self._pin = self.device.type == "cuda"
        self._pool = _BufferPool(self.batch_size * L * F)

    def __len__(self) -> int:
        n = int(self._ends.numel())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> torch.Tensor:
        """Positions into ``index(horizon)`` in the order batches take them, for an epoch."""
        n = int(self._ends.numel())
        if not self.shuffle:
            return torch.arange(n)
        e = self.epoch if epoch is None else int(epoch)
        state = np.random.SeedSequence([self.seed, e]).generate_state(1, dtype=np.uint64)[0]
        g = torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
        return torch.randperm(n, generator=g)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self.order()
        self.epoch += 1
        L, F = self.split.seq_len, self.split.n_features
        n = order.numel()
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            pos = order[start : start + self.batch_size]
            ends = self._ends[pos]  # [B]
            b = ends.numel()
            y = self._y[pos]
            if self._pin:
                out = torch.empty((b, L * F), dtype=torch.float32, pin_memory=True)
            else:
                out = self._pool.get(b * L * F).view(b, L * F)
            torch.index_select(self._win, 0, ends - (L - 1), out=out)  # the one gather
            x = out.view(b, L, F)
            if self._pin:
                x = x.to(self.device, non_blocking=True)
                y = y.pin_memory().to(self.device, non_blocking=True)
            elif self.device.type != "cpu":
                x, y = x.to(self.device), y.to(self.device)
            del out
            yield (x, y, ends) if self.with_ends else (x, y)
            del x, y
