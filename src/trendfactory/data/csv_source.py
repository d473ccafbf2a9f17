"""A user's own bars: one long-format CSV/Parquet file, or a directory with one file per symbol.

Column names match case-insensitively with the usual aliases (date/timestamp/time, adj close,
ticker...). Any bar frequency. When both 'close' and an adjusted close exist, the adjusted
close is used and open/high/low are scaled by the same factor so the bar stays consistent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from trendfactory.data.validation import validate_bars
from trendfactory.errors import DataValidationError

SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz")

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
            raise DataValidationError(
                f"{origin}: columns {first!r} and {col!r} both look like {canon}; rename or drop one"
            )
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


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # re-raised as a one-line message naming the file
        raise DataValidationError(f"{path}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc


def load_csv_bars(path: str | Path) -> tuple[list[pd.DataFrame], dict[str, str]]:
    """Validated frames (one per file) and a symbol -> file map for later error messages."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
        if not files:
            raise DataValidationError(f"{path}: no .csv or .parquet files in this directory; put one file per symbol there")
    elif path.is_file():
        files = [path]
    else:
        raise DataValidationError(f"{path}: no such file or directory; set data.path to your bars")

    frames, origins = [], {}
    for file in files:
        raw = rename_columns(_read(file), str(file))
        if "symbol" not in raw.columns:
            if len(files) == 1 and not path.is_dir():
                raise DataValidationError(
                    f"{file}: no symbol column (looked for {', '.join(ALIASES['symbol'])}); add one, "
                    "or use a directory with one file per symbol named after it"
                )
            raw.insert(0, "symbol", file.name.split(".")[0])
        frame = validate_bars(raw, str(file))
        for sym in frame["symbol"].unique():
            origins[str(sym)] = str(file)
        frames.append(frame)
    return frames, origins
