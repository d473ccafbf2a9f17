"""A user's own bars: one long-format CSV/Parquet file, or a directory with one file per symbol.

Column names match case-insensitively with the usual aliases (date/timestamp/time, adj close,
ticker...). Any bar frequency. When both 'close' and an adjusted close exist, the adjusted
close is used and open/high/low are scaled by the same factor so the bar stays consistent.

In a directory, a file without a symbol column is one symbol named after the file: the file
name minus its data suffix (.csv, .csv.gz, .parquet, .pq, any case), dots kept, so BRK.B.csv
is BRK.B, VOD.L.csv is VOD.L and 7203.T.csv is 7203.T. A symbol may come from one file only.
Hidden files (names starting with a dot) are skipped.

Time stamps with a UTC offset are converted to ``data.timezone`` and stored without a zone
(see :mod:`trendfactory.data.validation`). Daily bars stamped at local midnight with an offset
(``2014-01-02 00:00:00-05:00``, common in downloaded data) keep their calendar day and their
midnight stamp only when ``data.timezone`` is the exchange's zone (``America/New_York`` here);
with the default UTC they become 05:00 (04:00 in summer) of the same day -- still one bar per
day, but no longer midnight, so they are not recognised as date-only daily bars where that
matters (the embedded context join then waits a day longer for daily series). Set
``data.timezone`` to the exchange's zone for such data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from trendfactory.data.validation import validate_bars
from trendfactory.errors import DataValidationError

# Longest first, so that x.csv.gz is never taken for a .gz file named x.csv.
SUFFIXES = (".csv.gz", ".parquet", ".csv", ".pq")

ALIASES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker", "code", "instrument", "asset", "name"),
    "datetime": ("datetime", "date", "timestamp", "time", "date_time", "dt"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "price", "last"),
    "adj_close": ("adj_close", "adjclose", "adjusted_close", "adj"),
    "volume": ("volume", "vol", "v"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def rename_columns(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Map source columns to canonical names; ambiguous matches fail with the names involved."""
    lookup = {alias: canon for canon, aliases in ALIASES.items() for alias in aliases}
    mapping: dict[str, str] = {}
    for col in frame.columns:
        canon = lookup.get(_norm(col))
        if canon is None:
            continue
        if canon in mapping.values():
            first = next(k for k, v in mapping.items() if v == canon)
            raise DataValidationError(f"{origin}: columns {first!r} and {col!r} both look like {canon}; rename or drop one")
        mapping[col] = canon
    out = frame.rename(columns=mapping)[list(mapping.values())]
    if "adj_close" in out.columns:
        if "close" in out.columns:
            factor = out["adj_close"] / out["close"]
            for col in ("open", "high", "low"):
                if col in out.columns:
                    out[col] = out[col] * factor
        out = out.drop(columns=[c for c in ("close",) if c in out.columns]).rename(columns={"adj_close": "close"})
    return out


def data_suffix(path: Path) -> str | None:
    """The data suffix `path`'s name ends with (as written, any case), or None."""
    lower = path.name.lower()
    return next((path.name[-len(s) :] for s in SUFFIXES if lower.endswith(s)), None)


def symbol_from_name(path: Path) -> str:
    """The file name minus its data suffix, dots kept: BRK.B.csv -> BRK.B, 7203.T.csv.gz -> 7203.T."""
    suffix = data_suffix(path) or ""
    symbol = path.name[: len(path.name) - len(suffix)]
    if not symbol:
        raise DataValidationError(f"{path}: the file name gives no symbol; name the file after its symbol, e.g. AAPL.csv")
    return symbol


def _read(path: Path) -> pd.DataFrame:
    try:
        if (data_suffix(path) or "").lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, compression="gzip" if path.name.lower().endswith(".gz") else None)
    except Exception as exc:  # re-raised as a one-line message naming the file
        raise DataValidationError(f"{path}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc


def list_files(path: Path) -> list[Path]:
    """The data files of a directory (hidden ones, such as macOS '._AAPL.csv', skipped), or the file."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and data_suffix(p) and not p.name.startswith("."))
        if not files:
            raise DataValidationError(f"{path}: no .csv or .parquet files in this directory; put one file per symbol there")
        return files
    if path.is_file():
        return [path]
    raise DataValidationError(f"{path}: no such file or directory; set data.path to your bars")


def add_origins(origins: dict[str, str], frame: pd.DataFrame, file: Path) -> None:
    """Record symbol -> file; a symbol already read from another file names both files."""
    for sym in map(str, frame["symbol"].unique()):
        if sym in origins and origins[sym] != str(file):
            raise DataValidationError(f"{file}: symbol {sym} is also in {origins[sym]}; give each symbol's bars in one file only (merge the two files, or rename one if they are different symbols)")
        origins[sym] = str(file)


def read_bars_file(file: Path, in_directory: bool, timezone: str = "UTC") -> pd.DataFrame:
    """One file's validated bars. In a directory, a file without a symbol column is one symbol
    named after the file; a single file needs a symbol column."""
    raw = rename_columns(_read(file), str(file))
    if "symbol" not in raw.columns:
        if not in_directory:
            raise DataValidationError(f"{file}: no symbol column (looked for {', '.join(ALIASES['symbol'])}); add one, or use a directory with one file per symbol named after it")
        raw.insert(0, "symbol", symbol_from_name(file))
    return validate_bars(raw, str(file), timezone)


def load_csv_bars(path: str | Path, timezone: str = "UTC") -> tuple[list[pd.DataFrame], dict[str, str]]:
    """Validated frames (one per file) and a symbol -> file map for later error messages.

    `timezone` is ``data.timezone``: stamps with a UTC offset are converted to it."""
    path = Path(path)
    frames, origins = [], {}
    for file in list_files(path):
        frame = read_bars_file(file, path.is_dir(), timezone)
        add_origins(origins, frame, file)
        frames.append(frame)
    return frames, origins
