"""Symbol chunks: the unit of work of ingest and featurize (``data.chunk_symbols`` symbols).

Bars are long format, each symbol's rows one contiguous block (sorted by symbol, datetime): a
chunk is a run of whole symbols, so everything computed per symbol (indicators, labels, fold
roles) is the same in a chunk as in the whole universe, and memory holds one chunk at a time.

- :class:`FrameChunks`: chunks of a frame already in memory (one chunk when it has no more
  than ``chunk_symbols`` symbols: the frame itself);
- :class:`ParquetChunks`: chunks read from a parquet file, row groups as needed;
- :class:`FrameSink` / :class:`ParquetSink`: where chunked results go -- collected in memory,
  or appended to an atomically written parquet (:class:`trendfactory.io.ParquetStream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trendfactory.errors import DataValidationError
from trendfactory.io import ParquetStream

_SCAN_ROWS = 1 << 16  # rows per batch when scanning the symbol column


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive slices of ``items`` of ``size`` elements (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Runs:
    """Contiguous runs of one symbol each: their symbols and lengths, built block by block."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.symbols: list[str] = []
        self.lengths: list[int] = []
        self._seen: set[str] = set()
        self.rows = 0

    def add(self, symbols: np.ndarray) -> None:
        """Extend with the next rows' symbols (object or string array)."""
        n = len(symbols)
        if n == 0:
            return
        starts = np.concatenate([[0], np.flatnonzero(symbols[1:] != symbols[:-1]) + 1])
        lengths = np.diff(np.concatenate([starts, [n]]))
        for start, length in zip(starts.tolist(), lengths.tolist()):
            sym = str(symbols[start])
            if self.symbols and sym == self.symbols[-1] and start == 0:
                self.lengths[-1] += length  # the previous block's last symbol goes on
            elif sym in self._seen:
                raise DataValidationError(f"{self.origin}: symbol {sym} appears again at row {self.rows + start} after other symbols; rows must be sorted by (symbol, datetime)")
            else:
                self._seen.add(sym)
                self.symbols.append(sym)
                self.lengths.append(length)
        self.rows += n

    def offsets(self) -> np.ndarray:
        """[runs + 1] first row of each run, then the row count."""
        return np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)]).astype(np.int64)


class FrameChunks:
    """Re-iterable chunks of ``chunk_symbols`` whole symbols of an in-memory ``bars`` frame, in
    its row order (each symbol's rows contiguous, else a one-line error)."""

    def __init__(self, bars: pd.DataFrame, chunk_symbols: int, origin: str = "bars") -> None:
        if "symbol" not in bars.columns:
            raise DataValidationError(f"{origin}: no symbol column (have {list(bars.columns)}); bars need symbol, datetime and close")
        runs = _Runs(origin)
        runs.add(bars["symbol"].to_numpy())
        self.bars, self.symbols, self._offsets = bars, runs.symbols, runs.offsets()
        self.chunk_symbols = int(chunk_symbols)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        if len(self.symbols) <= self.chunk_symbols:
            yield self.bars  # the in-memory case: one chunk, the frame itself
            return
        for s0 in range(0, len(self.symbols), self.chunk_symbols):
            s1 = min(s0 + self.chunk_symbols, len(self.symbols))
            yield self.bars.iloc[self._offsets[s0] : self._offsets[s1]]


class ParquetChunks:
    """Re-iterable chunks of ``chunk_symbols`` whole symbols read from a parquet file sorted by
    symbol (each symbol's rows contiguous, else a one-line error naming the file and row).

    Opening scans the symbol column only; each chunk then reads just the row groups that hold
    its rows (the writers of this project put one chunk in one row group), so memory holds one
    chunk plus at most the row groups it straddles."""

    def __init__(self, path: str | Path, chunk_symbols: int, columns: list[str] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataValidationError(f"{self.path}: file not found; run the stage that writes it first")
        self.chunk_symbols = int(chunk_symbols)
        self.columns = columns
        pf = pq.ParquetFile(self.path)
        if "symbol" not in pf.schema_arrow.names:
            raise DataValidationError(f"{self.path}: no symbol column (have {pf.schema_arrow.names}); rerun the stage that writes it")
        runs = _Runs(str(self.path))
        for batch in pf.iter_batches(batch_size=_SCAN_ROWS, columns=["symbol"], use_threads=False):
            col = batch.column(0)
            if col.null_count:
                raise DataValidationError(f"{self.path}: empty symbol at row {runs.rows + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])}; fill or drop it")
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            runs.add(col.to_numpy(zero_copy_only=False))
        self.symbols, self._offsets = runs.symbols, runs.offsets()
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        self._group_start = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        pf = pq.ParquetFile(self.path)
        cache: dict[int, pa.Table] = {}  # row groups shared by consecutive chunks are read once
        for s0 in range(0, len(self.symbols), self.chunk_symbols):
            s1 = min(s0 + self.chunk_symbols, len(self.symbols))
            r0, r1 = int(self._offsets[s0]), int(self._offsets[s1])
            g0 = int(np.searchsorted(self._group_start, r0, side="right")) - 1
            g1 = int(np.searchsorted(self._group_start, r1, side="left"))  # groups g0 .. g1-1
            cache = {g: cache[g] if g in cache else pf.read_row_group(g, columns=self.columns, use_threads=False) for g in range(g0, g1)}
            table = pa.concat_tables([cache[g] for g in range(g0, g1)]) if g1 - g0 > 1 else cache[g0]
            table = table.slice(r0 - int(self._group_start[g0]), r1 - r0)
            cache = {g1 - 1: cache[g1 - 1]} if r1 < self._group_start[g1] else {}  # the next chunk starts in it
            yield table.to_pandas()
            del table


class FrameSink:
    """Chunks collected in memory: :attr:`frame` is their concatenation (the one chunk itself
    when there is one), with a fresh RangeIndex."""

    def __init__(self) -> None:
        self._frames: list[pd.DataFrame] = []
        self._drop: list[str] = []

    def write(self, frame: pd.DataFrame) -> None:
        self._frames.append(frame)

    def drop_columns(self, columns: list[str]) -> None:
        self._drop += list(columns)

    def chunks(self, columns: list[str] | None = None) -> Iterable[pd.DataFrame]:
        """What was written, chunk by chunk."""
        return (f if columns is None else f[columns] for f in self._frames)

    @property
    def frame(self) -> pd.DataFrame:
        if not self._frames:
            raise ValueError("nothing was written")
        frame = self._frames[0] if len(self._frames) == 1 else pd.concat(self._frames, ignore_index=True)
        return frame.drop(columns=self._drop) if self._drop else frame


class ParquetSink:
    """Chunks appended to an atomically written parquet (``stream``, from
    :func:`trendfactory.io.parquet_stream`), readable back chunk by chunk once complete."""

    def __init__(self, stream: ParquetStream, chunk_symbols: int) -> None:
        self.stream, self.chunk_symbols = stream, chunk_symbols

    def write(self, frame: pd.DataFrame) -> None:
        self.stream.write(frame)

    def drop_columns(self, columns: list[str]) -> None:
        self.stream.drop_columns(columns)

    def chunks(self, columns: list[str] | None = None) -> Iterable[pd.DataFrame]:
        """What was written, chunk by chunk (closes the stream: nothing more can be written)."""
        self.stream.close()
        return ParquetChunks(self.stream.tmp, self.chunk_symbols, columns)
