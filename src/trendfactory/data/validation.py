"""The one data-validation module: every source's bars pass through here.

Each failure raises DataValidationError with one line that names the file, the symbol, the
column, the (1-based) data row where it can, and the fix. Stages validate before they write
anything, so bad input never yields a partial output. Checks that need the whole universe
(history long enough for the warm-up, unadjusted splits) are in :mod:`trendfactory.data.universe`.

Time stamps: stamps with a UTC offset (``2014-01-02 00:00:00-05:00``, ``...Z``) are parsed as
instants, converted to ``data.timezone`` and stored without a zone (naive local time there);
stamps without one are taken as already in that zone. Offsets may change within a file
(daylight saving: -05:00 in winter, -04:00 in summer); a file mixing stamps with and without
an offset is refused, since the naive ones have no defined instant.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np
import pandas as pd

from trendfactory.errors import DataValidationError

BAR_COLUMNS = ("symbol", "datetime", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = ("symbol", "datetime", "close")

# A time of day followed by a UTC offset or zone letter: '00:00:00-05:00', '10:00Z', '10:00 UTC'.
# The time part is required so that date-only stamps such as '01-02-2014' never count.
_OFFSET = re.compile(r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


def _where(origin: str, frame: pd.DataFrame, pos: int, column: str | None = None) -> str:
    """'file: symbol AAPL, column close, data row 17' for the row at position `pos`."""
    parts = [f"symbol {frame['symbol'].iloc[pos]}"] if "symbol" in frame.columns else []
    if column:
        parts.append(f"column {column}")
    parts.append(f"data row {pos + 1}")
    return f"{origin}: " + ", ".join(parts)


def validate_bars(frame: pd.DataFrame, origin: str, timezone: str = "UTC") -> pd.DataFrame:
    """Check one source frame (already renamed to canonical columns); return it with clean dtypes.

    `origin` names where the rows came from (a file path or a loader) for the error message.
    `timezone` is ``data.timezone``: stamps carrying a UTC offset are converted to it.
    Rows must be in file order: 'unsorted time' is judged per symbol in that order.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{origin}: missing column(s) {', '.join(missing)} (have: {', '.join(map(str, frame.columns))}); bars need symbol, datetime and close (open/high/low/volume optional)"
        )
    if len(frame) == 0:
        raise DataValidationError(f"{origin}: no rows; give at least one symbol's bars")
    frame = frame.reset_index(drop=True)
    frame["symbol"] = frame["symbol"].astype(str)
    stamps, converted = parse_stamps(frame, origin, timezone)
    frame["datetime"] = stamps.astype("datetime64[ns]")
    frame = _check_numbers(frame, origin)
    _check_high_low(frame, origin)
    # A DST zone repeats an hour when its clocks go back: name that cause if it bites.
    hint = (
        (f"; the stamps were converted from UTC offsets to data.timezone {timezone}, whose clocks may go back an hour: set data.timezone: UTC for bars that trade through that hour")
        if converted and timezone != "UTC"
        else ""
    )
    _check_time_order(frame, origin, hint)
    return frame


# ----------------------------------------------------------------------------------------------
# time stamps
# ----------------------------------------------------------------------------------------------


def _has_offset(values: pd.Series) -> np.ndarray:
    """[N] bool: which stamps carry a UTC offset (strings by their text, datetimes by tzinfo)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return np.ones(len(values), dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(values):
        return np.zeros(len(values), dtype=bool)
    if pd.api.types.is_string_dtype(values):
        return values.str.strip().str.contains(_OFFSET).fillna(False).to_numpy(dtype=bool)
    return np.array(
        [bool(_OFFSET.search(v.strip())) if isinstance(v, str) else getattr(v, "tzinfo", None) is not None for v in values],
        dtype=bool,
    )


def _check_offsets_agree(frame: pd.DataFrame, origin: str, aware: np.ndarray, timezone: str) -> None:
    """All stamps with an offset, or none: a naive stamp beside aware ones has no defined instant."""
    values = frame["datetime"]
    present = np.flatnonzero(values.notna().to_numpy())  # a missing stamp fails later as unparseable
    if present.size == 0 or aware[present].all() or not aware[present].any():
        return
    first = int(present[0])
    pos = int(present[aware[present] != aware[first]][0])
    has, lacks = ("has a", "has none") if aware[pos] else ("has no", "has one")
    raise DataValidationError(
        f"{_where(origin, frame, pos, 'datetime')}: {values.iloc[pos]!r} {has} UTC offset but data row {first + 1} "
        f"{values.iloc[first]!r} {lacks}; give every stamp an offset, or none (stamps without one are taken as "
        f"data.timezone {timezone})"
    )


def _to_datetime(values: pd.Series, utc: bool, where: str) -> pd.Series:
    """pandas' parser, its rare refusals (e.g. mixed zones it could not see) as one line."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    try:
        return pd.to_datetime(values, errors="coerce", format="mixed", utc=utc)
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(f"{where}: cannot parse the time stamps ({first}); write them all in one form, e.g. 2020-01-31 15:30 or 2020-01-31 15:30:00-05:00") from exc


def parse_stamps(frame: pd.DataFrame, origin: str, timezone: str = "UTC") -> tuple[pd.Series, bool]:
    """Naive local times in `timezone` of the 'datetime' column, and whether any were converted
    from a UTC offset. Offsets may differ row to row (daylight saving), so aware stamps are
    parsed as UTC instants first, then converted."""
    values = frame["datetime"]
    aware = _has_offset(values)
    _check_offsets_agree(frame, origin, aware, timezone)
    parsed = _to_datetime(values, bool(aware.any()), f"{origin}: column datetime")
    bad = parsed.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        if pd.isna(values.iloc[pos]):
            raise DataValidationError(f"{_where(origin, frame, pos, 'datetime')}: the time stamp is empty; fill or drop that row")
        raise DataValidationError(f"{_where(origin, frame, pos, 'datetime')}: cannot parse {values.iloc[pos]!r} as a date/time; use ISO format like 2020-01-31 or 2020-01-31 15:30")
    if parsed.dt.tz is None:
        return parsed, False
    return parsed.dt.tz_convert(timezone).dt.tz_localize(None), True


# ----------------------------------------------------------------------------------------------
# prices, volume, order
# ----------------------------------------------------------------------------------------------


def _check_numbers(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Numeric, finite, positive prices and non-negative volume; empty optional columns dropped."""
    for col in ("open", "high", "low", "close", "volume"):
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        nonnumeric = values.isna() & frame[col].notna()
        if nonnumeric.any():
            pos = int(np.flatnonzero(nonnumeric)[0])
            raise DataValidationError(f"{_where(origin, frame, pos, col)}: value {frame[col].iloc[pos]!r} is not a number; fix or drop that row")
        if col != "close" and values.isna().all():
            # A close-only source may carry empty open/high/low/volume columns: treat as absent.
            frame = frame.drop(columns=col)
            continue
        arr = values.to_numpy(dtype=np.float64)
        _check_values(frame, origin, col, arr)
        frame[col] = arr
    return frame


def _check_values(frame: pd.DataFrame, origin: str, col: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"{_where(origin, frame, pos, col)}: {col} is {arr[pos]} (NaN/inf); fill or drop the row, or remove the column if the source has no such field")
    if col in PRICE_COLUMNS:
        nonpos = arr <= 0
        if nonpos.any():
            pos = int(np.flatnonzero(nonpos)[0])
            raise DataValidationError(f"{_where(origin, frame, pos, col)}: price {arr[pos]} is not positive; prices must be > 0 (check for missing-value codes like 0 or -1)")
    elif (arr < 0).any():
        pos = int(np.flatnonzero(arr < 0)[0])
        raise DataValidationError(f"{_where(origin, frame, pos, col)}: volume {arr[pos]} is negative; volume must be >= 0")


def _check_high_low(frame: pd.DataFrame, origin: str) -> None:
    if "high" in frame.columns and "low" in frame.columns:
        inverted = frame["high"].to_numpy() < frame["low"].to_numpy()
        if inverted.any():
            pos = int(np.flatnonzero(inverted)[0])
            raise DataValidationError(f"{_where(origin, frame, pos, 'high')}: high {frame['high'].iloc[pos]} < low {frame['low'].iloc[pos]}; the high/low columns are swapped or corrupt")
    elif ("high" in frame.columns) != ("low" in frame.columns):
        have = "high" if "high" in frame.columns else "low"
        raise DataValidationError(f"{origin}: column {have} present without its pair; give both high and low, or neither")


def _check_time_order(frame: pd.DataFrame, origin: str, hint: str = "") -> None:
    """One bar per (symbol, datetime), time increasing within each symbol in file order."""
    dup = frame.duplicated(["symbol", "datetime"], keep="first").to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataValidationError(f"{_where(origin, frame, pos, 'datetime')}: duplicate bar at {frame['datetime'].iloc[pos]}; keep one row per (symbol, datetime){hint}")
    # Stable sort by symbol keeps file order within each symbol.
    order = np.argsort(frame["symbol"].to_numpy(), kind="stable")
    sym_sorted = frame["symbol"].to_numpy()[order]
    dt_sorted = frame["datetime"].to_numpy()[order]
    same = sym_sorted[1:] == sym_sorted[:-1]
    backwards = same & (dt_sorted[1:] < dt_sorted[:-1])
    if backwards.any():
        k = int(np.flatnonzero(backwards)[0])
        pos = int(order[k + 1])
        raise DataValidationError(
            f"{_where(origin, frame, pos, 'datetime')}: time goes backwards ({frame['datetime'].iloc[pos]} after {pd.Timestamp(dt_sorted[k])}); sort the file by datetime within each symbol{hint}"
        )


LENGTH_FIX = "drop the symbol, give more history, or shorten the lookbacks/horizons in params.yaml"


def check_min_length(bars: pd.DataFrame, min_rows: int, origins: dict[str, str] | str, why: str, *, needed: str = "needed", fix: str = LENGTH_FIX) -> None:
    """Every symbol needs at least `min_rows` bars (longest lookback + horizon + entry lag...)."""
    check_symbol_lengths(bars.groupby("symbol", sort=True).size(), min_rows, origins, why, needed=needed, fix=fix)


def check_symbol_lengths(counts: pd.Series, min_rows: int, origins: dict[str, str] | str, why: str, *, needed: str = "needed", fix: str = LENGTH_FIX) -> None:
    """:func:`check_min_length` from the bars per symbol (``counts``, indexed by symbol), so a
    universe read chunk by chunk is checked as a whole. ``needed`` and ``fix`` word the message
    for the caller (the scorer: "needed to score one bar", give that many bars)."""
    counts = counts.sort_index()
    short = counts[counts < min_rows]
    if len(short):
        sym = str(short.index[0])
        origin = origins.get(sym, "bars") if isinstance(origins, dict) else origins
        more = f" (and {len(short) - 1} more symbol(s))" if len(short) > 1 else ""
        raise DataValidationError(f"{origin}: symbol {sym} has {int(short.iloc[0])} bars, fewer than the {min_rows} {needed} ({why}){more}; {fix}")


def canonical_order(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars sorted by (symbol, datetime) with the canonical column order and a fresh index."""
    cols = [c for c in BAR_COLUMNS if c in bars.columns]
    return bars[cols].sort_values(["symbol", "datetime"], kind="stable").reset_index(drop=True)


def combine(frames: Iterable[pd.DataFrame], columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Concatenate validated frames; columns absent from any frame are dropped from all.

    Mixed sources (some with high/low, some close-only) fall back to what all of them share,
    so indicators never silently see a column that only part of the universe has. A universe
    combined chunk by chunk passes ``columns``: what every source of the whole universe shares.
    """
    frames = list(frames)
    cols = shared_columns([f.columns for f in frames] if columns is None else [columns])
    out = pd.concat([f[cols] for f in frames], ignore_index=True)
    dup = out.duplicated(["symbol", "datetime"]).to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataValidationError(f"bars: symbol {out['symbol'].iloc[pos]} appears in more than one file with a bar at {out['datetime'].iloc[pos]}; give each symbol in one file only")
    return canonical_order(out)


def shared_columns(column_sets: Iterable[Iterable[str]]) -> list[str]:
    """The bar columns every source has (what :func:`combine` keeps), in canonical order."""
    shared = set.intersection(*(set(c) for c in column_sets))
    return [c for c in BAR_COLUMNS if c in shared]
