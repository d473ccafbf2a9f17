"""Long-format bars <-> left-aligned, NaN-padded [S, T] tensors.

The indicator kernels (:mod:`trendfactory.features.indicators`) work on ``[S, T]`` tensors: one
row per symbol, the symbol's first bar in column 0, NaN after its last bar. :func:`pack` builds
them from long-format bars (one row per (symbol, datetime)), and :meth:`Packed.unpack` maps an
``[S, T]`` result back to one value per original row, in the original row order. Everything is
vectorised (factorize, bincount, one fancy-index scatter/gather); nothing loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from trendfactory.errors import DataValidationError

__all__ = ["PackLayout", "Packed", "pack"]


@dataclass(frozen=True)
class PackLayout:
    """Where every row of a long-format frame lives in the [S, T] layout.

    symbols: sorted unique symbols (row s of the tensors); lengths: [S] bars per symbol;
    row_symbol / row_pos: [N] symbol index and bar position of each ORIGINAL row;
    order: [N] original row indices sorted by (symbol, position), so the rows of symbols
    s0..s1-1 are ``order[offsets[s0]:offsets[s1]]``; offsets: [S+1].
    """

    symbols: list[str]
    lengths: np.ndarray
    row_symbol: np.ndarray
    row_pos: np.ndarray
    order: np.ndarray
    offsets: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.row_symbol.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.lengths.max()) if self.lengths.size else 0

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> "PackLayout":
        """Layout of ``bars`` (needs a ``symbol`` column; ``datetime`` orders bars within a
        symbol when present, else the row order does). Bars are expected sorted by (symbol,
        datetime); unsorted input is handled with one stable sort."""
        if "symbol" not in bars.columns:
            raise DataValidationError(f"bars: missing column 'symbol' (have {list(bars.columns)}); bars must be long format with one row per (symbol, datetime)")
        codes, uniques = pd.factorize(bars["symbol"], sort=True)  # codes [N] in 0..S-1
        if (codes < 0).any():
            raise DataValidationError("bars: column 'symbol' has missing values; drop or fill them")
        codes = codes.astype(np.int64, copy=False)
        n = codes.shape[0]
        S = len(uniques)
        if n == 0:
            order = np.zeros(0, dtype=np.int64)
        elif _is_sorted(codes, bars["datetime"] if "datetime" in bars.columns else None):
            order = np.arange(n, dtype=np.int64)  # the usual case: already sorted
        elif "datetime" in bars.columns:
            order = np.lexsort((_time_key(bars["datetime"]), codes)).astype(np.int64)
        else:
            order = np.argsort(codes, kind="stable").astype(np.int64)
        lengths = np.bincount(codes, minlength=S).astype(np.int64)  # [S]
        offsets = np.zeros(S + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        sorted_codes = codes[order]
        pos_sorted = np.arange(n, dtype=np.int64) - offsets[sorted_codes]  # [N] sorted order
        row_pos = np.empty(n, dtype=np.int64)
        row_pos[order] = pos_sorted
        return cls(
            symbols=[str(s) for s in uniques],
            lengths=lengths,
            row_symbol=codes,
            row_pos=row_pos,
            order=order,
            offsets=offsets,
        )

    # -- symbol-chunk helpers (the feature stage packs a few hundred symbols at a time) ------

    def chunk_rows(self, s0: int, s1: int) -> np.ndarray:
        """[n] original row indices of symbols s0..s1-1, sorted by (symbol, position)."""
        return self.order[self.offsets[s0] : self.offsets[s1]]

    def chunk_flat_index(self, s0: int, s1: int, T: int) -> np.ndarray:
        """[n] flat index into an [s1-s0, T] tensor for the rows of :meth:`chunk_rows`."""
        rows = self.chunk_rows(s0, s1)
        return (self.row_symbol[rows] - s0) * T + self.row_pos[rows]

    def pack_values(
        self,
        values: np.ndarray,
        s0: int = 0,
        s1: int | None = None,
        T: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        """[s1-s0, T] tensor of per-row ``values`` ([N], original row order) for symbols
        s0..s1-1, left-aligned and NaN-padded (T defaults to their longest length)."""
        s1 = len(self.symbols) if s1 is None else s1
        if T is None:
            T = int(self.lengths[s0:s1].max()) if s1 > s0 else 0
        values = np.asarray(values, dtype=np.float64)
        if self.is_dense(s0, s1, T):  # rows already in [s, T] order: one slice copy
            r0 = int(self.order[self.offsets[s0]])
            buf = values[r0 : r0 + (s1 - s0) * T].copy()
        else:
            rows = self.chunk_rows(s0, s1)
            flat = self.chunk_flat_index(s0, s1, T)
            buf = np.full((s1 - s0) * T, np.nan, dtype=np.float64)  # [s*T]
            buf[flat] = values[rows]
        return torch.from_numpy(buf.reshape(s1 - s0, T)).to(device=device, dtype=dtype)

    def is_dense(self, s0: int, s1: int, T: int) -> bool:
        """True when symbols s0..s1-1 all have T bars and their rows are consecutive and in
        order in the original frame: then the [s, T] layout is a plain reshape of those rows."""
        if s1 <= s0 or not bool((self.lengths[s0:s1] == T).all()):
            return False
        rows = self.chunk_rows(s0, s1)
        return bool(rows[-1] - rows[0] + 1 == rows.size and (np.diff(rows) == 1).all())


def _is_sorted(codes: np.ndarray, dt: pd.Series | None) -> bool:
    """True when rows are already ordered by (symbol code, datetime)."""
    dc = np.diff(codes)
    if (dc < 0).any():
        return False
    if dt is None:
        return True
    try:
        t = _time_key(dt)
        same = dc == 0
        return bool((t[1:][same] > t[:-1][same]).all())
    except TypeError:  # incomparable datetime values: let lexsort decide/raise
        return False


def _time_key(dt: pd.Series) -> np.ndarray:
    """Sortable numpy values of a datetime column (tz-aware -> UTC datetime64)."""
    if isinstance(dt.dtype, pd.DatetimeTZDtype):
        return dt.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return dt.to_numpy()


@dataclass
class Packed:
    """Tensors [S, T] of the packed columns plus the layout to map results back to rows."""

    tensors: dict[str, Tensor]
    lengths: np.ndarray
    symbols: list[str]
    layout: PackLayout = field(repr=False)

    def unpack(self, t: Tensor) -> np.ndarray:
        """[N] float64 values of an [S, T] result, one per original row, in row order."""
        S, T = len(self.symbols), int(self.layout.max_len)
        if tuple(t.shape) != (S, T):
            raise ValueError(f"unpack expects a [{S}, {T}] tensor; got {tuple(t.shape)}")
        arr = t.detach().to("cpu", torch.float64).numpy()
        return arr[self.layout.row_symbol, self.layout.row_pos]


def pack(
    bars: pd.DataFrame,
    columns: list[str],
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> Packed:
    """Pack the ``columns`` of long-format ``bars`` into left-aligned, NaN-padded [S, T]
    tensors (S = number of symbols, sorted; T = the longest symbol's bar count).

    >>> p = pack(bars, ["close"]); p.tensors["close"].shape  # (S, T)
    >>> np.allclose(p.unpack(p.tensors["close"]), bars["close"])  # round trip
    """
    missing = [c for c in columns if c not in bars.columns]
    if missing:
        raise DataValidationError(f"bars: missing column(s) {missing} (have {list(bars.columns)}); pack only the columns the source provides")
    layout = PackLayout.from_bars(bars)
    T = layout.max_len
    tensors = {c: layout.pack_values(bars[c].to_numpy(dtype=np.float64, na_value=np.nan), T=T, dtype=dtype, device=device) for c in columns}
    return Packed(tensors=tensors, lengths=layout.lengths.copy(), symbols=list(layout.symbols), layout=layout)
