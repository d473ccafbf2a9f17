"""As-of joins of market-wide series onto the bars' calendar, with explicit publication lags.

A value is joined to a bar only once it was public at that bar's time (leakage rule 1):
- a monthly series stamped at its month start (CPI for March is stamped 03-01) is public
  `release_lag_days` after that stamp (core CPI: ~45 days, mid next month);
- a date-stamped daily series (index close, oil) is public at the end of its day: daily bars
  (midnight stamps, meaning "the close of that day") may see the same day's value, intraday
  bars only the previous day's.

A value also goes stale: it stands for "the latest release" only until the next release is
due. Past ``STALE_AFTER`` from its publication (a series that ended, or a gap in it) the
bar gets NaN, not the last value carried on for years -- such rows have a missing feature and
stay out of the windows, and ingest warns with how many bars that is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# How long a published value stays current: a monthly release until about two months later
# (one missed or late release), a daily one across holidays and short outages.
STALE_AFTER = {True: pd.Timedelta(days=62), False: pd.Timedelta(days=10)}  # keyed by is_monthly


def is_daily_calendar(datetimes: pd.Series | pd.DatetimeIndex) -> bool:
    """True when every stamp is a midnight, i.e. date-only daily (or coarser) bars."""
    dt = pd.DatetimeIndex(datetimes)
    return bool((dt == dt.normalize()).all())


def publication_times(stamps: pd.Series, monthly: bool, release_lag_days: int, daily_bars: bool) -> pd.Series:
    """When each observation became public, on the bars' clock."""
    stamps = pd.to_datetime(stamps).astype("datetime64[ns]")
    lag = pd.Timedelta(days=release_lag_days)
    if monthly:
        return stamps + lag
    # Daily value known at the end of its day; intraday bars must wait for the next day.
    return stamps + lag + (pd.Timedelta(0) if daily_bars else pd.Timedelta(days=1))


def asof_join(calendar: pd.DatetimeIndex, frame: pd.DataFrame, published: pd.Series, stale_after: pd.Timedelta | None = None) -> pd.DataFrame:
    """Values of `frame` (minus 'datetime') as known at each calendar time; NaN before the first
    release and, with `stale_after`, once the latest release is older than that."""
    values = frame.drop(columns=["datetime"]).copy()
    values["published"] = published.to_numpy()
    values = values.sort_values("published", kind="stable")
    left = pd.DataFrame({"datetime": calendar.astype("datetime64[ns]")})
    joined = pd.merge_asof(left, values, left_on="datetime", right_on="published", direction="backward", tolerance=stale_after)
    return joined.drop(columns=["published"])


def build_context(
    calendar: pd.DatetimeIndex,
    series: dict[str, tuple[pd.DataFrame, bool]],
    release_lag_days: dict[str, int],
) -> tuple[pd.DataFrame, dict]:
    """Context frame on `calendar` (sorted unique bar times) and a per-series join report.

    `series` maps name -> (frame with 'datetime' + value columns, is_monthly).
    """
    daily_bars = is_daily_calendar(calendar)
    out = pd.DataFrame({"datetime": calendar.astype("datetime64[ns]")})
    report = {}
    for name, (frame, monthly) in series.items():
        lag = int(release_lag_days.get(name, 0))
        published = publication_times(frame["datetime"], monthly, lag, daily_bars)
        stale = STALE_AFTER[bool(monthly)]
        joined = asof_join(calendar, frame, published, stale)
        current_until = pd.Timestamp(published.max()) + stale
        for col in joined.columns:
            if col != "datetime":
                out[col] = joined[col].to_numpy(dtype=np.float64)
        report[name] = {
            "monthly": monthly,
            "release_lag_days": lag,
            "columns": [c for c in joined.columns if c != "datetime"],
            "first_stamp": str(pd.Timestamp(frame["datetime"].min()).date()),
            "last_stamp": str(pd.Timestamp(frame["datetime"].max()).date()),
            "rows": int(len(frame)),
            "stale_after_days": int(stale.days),
            "bars_after_end": int((calendar > current_until).sum()),  # bars with no current value left
        }
    return out, report
