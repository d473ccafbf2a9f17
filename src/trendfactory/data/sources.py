"""Where ingest's bars come from, served a chunk of symbols at a time.

A source first says what the universe is -- each symbol's bar count inside data.start ..
data.end, the columns every symbol shares, which file each symbol came from -- and then loads
the validated, combined bars of any list of its symbols (:meth:`BarSource.load`), so ingest
can judge the whole universe (data.min_history) before it holds any chunk of it.

- the embedded datasets and a single CSV/Parquet file are read whole (they are small, or a
  long-format file cannot be split without reading it);
- a directory of per-symbol files is read twice: once to learn each file's symbols, columns
  and counts, then file by file for each chunk (a file of several symbols is read for each
  chunk it feeds);
- the synthetic generator generates each chunk on its own, the same numbers as all at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trendfactory.data import embedded
from trendfactory.data.csv_source import add_origins, list_files, load_csv_bars, read_bars_file
from trendfactory.data.synthetic import SyntheticGenerator
from trendfactory.data.validation import combine, shared_columns, validate_bars
from trendfactory.params import DataConfig


def in_range(bars: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    """The bars dated data.start .. data.end (the end day included), with a fresh index."""
    if cfg.start:
        bars = bars[bars["datetime"] >= pd.Timestamp(cfg.start)]
    if cfg.end:
        bars = bars[bars["datetime"] <= pd.Timestamp(cfg.end) + pd.Timedelta(days=1) - pd.Timedelta(1)]
    return bars.reset_index(drop=True)


class BarSource:
    """A universe of bars: what it holds (``counts``, ``columns``, ``origins``, ``provenance``)
    and the bars of any of its symbols (:meth:`load`)."""

    counts: pd.Series  # symbol -> bars within data.start..data.end (symbols with none left out), by symbol
    columns: list[str]  # the bar columns every symbol has (canonical order)
    origins: dict[str, str]  # symbol -> the user's file or the loader, for messages
    provenance: dict

    def load(self, symbols: list[str]) -> pd.DataFrame:
        """Validated bars of ``symbols`` within the date range, sorted by (symbol, datetime)."""
        raise NotImplementedError


class FrameSource(BarSource):
    """A universe already in memory (the embedded datasets, one long-format file)."""

    def __init__(self, frames: list[pd.DataFrame], cfg: DataConfig, origins: dict[str, str], provenance: dict) -> None:
        self.bars = in_range(combine(frames), cfg)
        self.columns = list(self.bars.columns)
        self.counts = self.bars.groupby("symbol", sort=True).size()
        self.origins, self.provenance = origins, provenance
        self._offsets = np.concatenate([[0], np.cumsum(self.counts.to_numpy())])  # bars are sorted by symbol
        self._position = {s: i for i, s in enumerate(self.counts.index)}

    def load(self, symbols: list[str]) -> pd.DataFrame:
        if len(symbols) == len(self.counts):
            return self.bars
        parts = [self.bars.iloc[self._offsets[i] : self._offsets[i + 1]] for i in sorted(self._position[s] for s in symbols)]
        return pd.concat(parts, ignore_index=True)


class DirectorySource(BarSource):
    """One file per symbol (or a few symbols per file) in a directory, read file by file."""

    def __init__(self, path: Path, cfg: DataConfig) -> None:
        self.path, self.cfg = path, cfg
        self.origins: dict[str, str] = {}
        counts: dict[str, int] = {}
        column_sets = []
        for file in list_files(path):  # validates every file before anything is written
            frame = read_bars_file(file, True, cfg.timezone)
            add_origins(self.origins, frame, file)
            column_sets.append(list(frame.columns))
            counts.update(in_range(frame, cfg).groupby("symbol", sort=False).size().to_dict())
        self.columns = shared_columns(column_sets)
        self.counts = pd.Series(counts, dtype=np.int64).sort_index()
        self.counts = self.counts[self.counts > 0]
        self.provenance = {"path": str(path), "files": sorted(set(self.origins.values()))}

    def load(self, symbols: list[str]) -> pd.DataFrame:
        wanted = set(symbols)
        frames = []
        for file in sorted({self.origins[s] for s in symbols}):
            frame = read_bars_file(Path(file), True, self.cfg.timezone)
            frames.append(frame[frame["symbol"].isin(wanted)])
        return in_range(combine(frames, self.columns), self.cfg)


class SyntheticSource(BarSource):
    """The seeded generator; every symbol has the same calendar."""

    def __init__(self, cfg: DataConfig, seed: int) -> None:
        self.cfg = cfg
        self.generator = SyntheticGenerator(cfg.synthetic, seed, every=cfg.chunk_symbols)
        self._index = {s: i for i, s in enumerate(self.generator.symbols)}
        n = len(in_range(pd.DataFrame({"datetime": self.generator.dates}), cfg))
        self.counts = pd.Series(n, index=sorted(self.generator.symbols), dtype=np.int64)
        self.counts = self.counts[self.counts > 0]
        self.columns = ["symbol", "datetime", "open", "high", "low", "close", "volume"] if cfg.synthetic.ohlcv else ["symbol", "datetime", "close"]
        self.origins = {s: "synthetic generator" for s in self.generator.symbols}
        self.provenance = {"generator": "trendfactory.data.synthetic.generate_bars", "seed": seed, **cfg.synthetic.__dict__}

    def load(self, symbols: list[str]) -> pd.DataFrame:
        # symbols are sorted by name, the generator by number (SYN1000 sorts before SYN101):
        # generate each run of consecutive numbers
        idx = np.sort([self._index[s] for s in symbols])
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1
        runs = [(int(r[0]), int(r[-1]) + 1) for r in np.split(idx, cuts)]
        frames = [validate_bars(self.generator.bars(a, b), "synthetic generator", self.cfg.timezone) for a, b in runs]
        return in_range(combine(frames), self.cfg)


def open_source(cfg: DataConfig, seed: int) -> BarSource:
    """The source data.source names, its universe known and validated."""
    if cfg.source == "embedded":
        loaded = embedded.DATASETS[cfg.dataset]()
        frames = [validate_bars(item.frame, item.loader, cfg.timezone) for item in loaded]
        origins = {str(s): item.loader for item, f in zip(loaded, frames) for s in f["symbol"].unique()}
        return FrameSource(frames, cfg, origins, {"dataset": cfg.dataset, "loaders": [item.provenance() for item in loaded]})
    if cfg.source == "csv":
        path = Path(cfg.path) if cfg.path is not None else None
        if path is not None and path.is_dir():
            return DirectorySource(path, cfg)
        frames, origins = load_csv_bars(cfg.path, cfg.timezone)
        return FrameSource(frames, cfg, origins, {"path": str(cfg.path), "files": sorted(set(origins.values()))})
    return SyntheticSource(cfg, seed)
