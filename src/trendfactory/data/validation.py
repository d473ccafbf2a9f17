"""The one data-validation module: every source's bars pass through here.

Each failure raises DataValidationError with one line that names the file, the symbol, the
column, the (1-based) data row where it can, and the fix. Stages validate before they write
anything, so bad input never yields a partial output.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from trendfactory.errors import DataValidationError

BAR_COLUMNS = ("symbol", "datetime", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = ("symbol", "datetime", "close")


def _where(origin: str, frame: pd.DataFrame, pos: int, column: str | None = None) -> str:
    """'file: symbol AAPL, column close, data row 17' for the row at position `pos`."""
    parts = [f"symbol {frame['symbol'].iloc[pos]}"] if "symbol" in frame.columns else []
    if column:
        parts.append(f"column {column}")
    parts.append(f"data row {pos + 1}")
    return f"{origin}: " + ", ".join(parts)


def validate_bars(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Check one source frame (already renamed to canonical columns); return it with clean dtypes.

    `origin` names where the rows came from (a file path or a loader) for the error message.
    Rows must be in file order: 'unsorted time' is judged per symbol in that order.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{origin}: missing column(s) {', '.join(missing)} (have: {', '.join(map(str, frame.columns))}); "
            "bars need symbol, datetime and close (open/high/low/volume optional)"
        )
    if len(frame) == 0:
        raise DataValidationError(f"{origin}: no rows; give at least one symbol's bars")
    frame = frame.reset_index(drop=True)
    frame["symbol"] = frame["symbol"].astype(str)

    if not pd.api.types.is_datetime64_any_dtype(frame["datetime"]):
        parsed = pd.to_datetime(frame["datetime"], errors="coerce", format="mixed")
        bad = parsed.isna() & frame["datetime"].notna()
        if bad.any() or parsed.isna().any():
            pos = int(np.flatnonzero(bad | parsed.isna())[0])
            raise DataValidationError(
                f"{_where(origin, frame, pos, 'datetime')}: cannot parse {frame['datetime'].iloc[pos]!r} as a date/time; "
                "use ISO format like 2020-01-31 or 2020-01-31 15:30"
            )
        frame["datetime"] = parsed
    if getattr(frame["datetime"].dt, "tz", None) is not None:
        # One clock for every source: naive UTC.
        frame["datetime"] = frame["datetime"].dt.tz_convert("UTC").dt.tz_localize(None)
    frame["datetime"] = frame["datetime"].astype("datetime64[ns]")

    for col in ("open", "high", "low", "close", "volume"):
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        nonnumeric = values.isna() & frame[col].notna()
        if nonnumeric.any():
            pos = int(np.flatnonzero(nonnumeric)[0])
            raise DataValidationError(
                f"{_where(origin, frame, pos, col)}: value {frame[col].iloc[pos]!r} is not a number; fix or drop that row"
            )
        if col != "close" and values.isna().all():
            # A close-only source may carry empty open/high/low/volume columns: treat as absent.
            frame = frame.drop(columns=col)
            continue
        arr = values.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{_where(origin, frame, pos, col)}: {col} is {arr[pos]} (NaN/inf); fill or drop the row, "
                "or remove the column if the source has no such field"
            )
        if col in PRICE_COLUMNS:
            nonpos = arr <= 0
            if nonpos.any():
                pos = int(np.flatnonzero(nonpos)[0])
                raise DataValidationError(
                    f"{_where(origin, frame, pos, col)}: price {arr[pos]} is not positive; prices must be > 0 "
                    "(check for missing-value codes like 0 or -1)"
                )
        elif (arr < 0).any():
            pos = int(np.flatnonzero(arr < 0)[0])
            raise DataValidationError(f"{_where(origin, frame, pos, col)}: volume {arr[pos]} is negative; volume must be >= 0")
        frame[col] = arr

    if "high" in frame.columns and "low" in frame.columns:
        inverted = frame["high"].to_numpy() < frame["low"].to_numpy()
        if inverted.any():
            pos = int(np.flatnonzero(inverted)[0])
            raise DataValidationError(
                f"{_where(origin, frame, pos, 'high')}: high {frame['high'].iloc[pos]} < low {frame['low'].iloc[pos]}; "
                "the high/low columns are swapped or corrupt"
            )
    elif ("high" in frame.columns) != ("low" in frame.columns):
        have = "high" if "high" in frame.columns else "low"
        raise DataValidationError(f"{origin}: column {have} present without its pair; give both high and low, or neither")

    dup = frame.duplicated(["symbol", "datetime"], keep="first").to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataValidationError(
            f"{_where(origin, frame, pos, 'datetime')}: duplicate bar at {frame['datetime'].iloc[pos]}; "
            "keep one row per (symbol, datetime)"
        )

    # Time must increase within each symbol in file order (stable sort keeps file order).
    order = np.argsort(frame["symbol"].to_numpy(), kind="stable")
    sym_sorted = frame["symbol"].to_numpy()[order]
    dt_sorted = frame["datetime"].to_numpy()[order]
    same = sym_sorted[1:] == sym_sorted[:-1]
    backwards = same & (dt_sorted[1:] < dt_sorted[:-1])
    if backwards.any():
        k = int(np.flatnonzero(backwards)[0])
        pos = int(order[k + 1])
        raise DataValidationError(
            f"{_where(origin, frame, pos, 'datetime')}: time goes backwards ({frame['datetime'].iloc[pos]} after "
            f"{pd.Timestamp(dt_sorted[k])}); sort the file by datetime within each symbol"
        )
    return frame


def check_min_length(bars: pd.DataFrame, min_rows: int, origins: dict[str, str] | str, why: str) -> None:
    """Every symbol needs at least `min_rows` bars (longest lookback + horizon + entry lag...)."""
    counts = bars.groupby("symbol", sort=True).size()
    short = counts[counts < min_rows]
    if len(short):
        sym = str(short.index[0])
        origin = origins.get(sym, "bars") if isinstance(origins, dict) else origins
        more = f" (and {len(short) - 1} more symbol(s))" if len(short) > 1 else ""
        raise DataValidationError(
            f"{origin}: symbol {sym} has {int(short.iloc[0])} bars, fewer than the {min_rows} needed ({why}){more}; "
            "drop the symbol, give more history, or shorten the lookbacks/horizons in params.yaml"
        )


def canonical_order(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars sorted by (symbol, datetime) with the canonical column order and a fresh index."""
    cols = [c for c in BAR_COLUMNS if c in bars.columns]
    return bars[cols].sort_values(["symbol", "datetime"], kind="stable").reset_index(drop=True)


def combine(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate validated frames; columns absent from any frame are dropped from all.

    Mixed sources (some with high/low, some close-only) fall back to what all of them share,
    so indicators never silently see a column that only part of the universe has.
    """
    frames = list(frames)
    shared = set.intersection(*(set(f.columns) for f in frames))
    cols = [c for c in BAR_COLUMNS if c in shared]
    out = pd.concat([f[cols] for f in frames], ignore_index=True)
    dup = out.duplicated(["symbol", "datetime"]).to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataValidationError(
            f"bars: symbol {out['symbol'].iloc[pos]} appears in more than one file with a bar at {out['datetime'].iloc[pos]}; "
            "give each symbol in one file only"
        )
    return canonical_order(out)
