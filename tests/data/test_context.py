"""As-of joins with explicit publication lags: never a value before it was public."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trendfactory.data.context import build_context, is_daily_calendar


def test_monthly_series_waits_for_its_release_lag():
    cal = pd.DatetimeIndex(pd.date_range("2020-01-01", "2020-05-31", freq="B"))
    monthly = pd.DataFrame({"datetime": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01"]), "cpi": [1.0, 2.0, 3.0]})
    out, report = build_context(cal, {"cpi": (monthly, True)}, {"cpi": 45})
    s = out.set_index("datetime")["cpi"]
    # January's value (stamped 01-01) is public on 02-15: NaN before, 1.0 from then.
    assert np.isnan(s[:"2020-02-14"]).all()
    assert s["2020-02-17"] == 1.0  # first business day on/after 02-15
    # February's value is public on 03-17 (02-01 + 45 days), March's on 04-15.
    assert s["2020-03-16"] == 1.0 and s["2020-03-17"] == 2.0
    assert s["2020-04-14"] == 2.0 and s["2020-04-15"] == 3.0
    assert report["cpi"] == {
        "monthly": True,
        "release_lag_days": 45,
        "columns": ["cpi"],
        "first_stamp": "2020-01-01",
        "last_stamp": "2020-03-01",
        "rows": 3,
        "stale_after_days": 62,
        "bars_after_end": 0,
    }


def test_daily_series_same_day_for_daily_bars_next_day_for_intraday():
    daily = pd.DataFrame({"datetime": pd.to_datetime(["2020-01-02", "2020-01-03"]), "mkt": [10.0, 11.0]})
    cal = pd.DatetimeIndex(pd.to_datetime(["2020-01-02", "2020-01-03"]))
    assert is_daily_calendar(cal)
    out, _ = build_context(cal, {"mkt": (daily, False)}, {})
    assert out["mkt"].tolist() == [10.0, 11.0]
    # Intraday bars: the 01-03 close is not known at 01-03 10:00, only the 01-02 one.
    intraday = pd.DatetimeIndex(pd.to_datetime(["2020-01-02 15:00", "2020-01-03 10:00", "2020-01-04 09:30"]))
    assert not is_daily_calendar(intraday)
    out, _ = build_context(intraday, {"mkt": (daily, False)}, {})
    assert np.isnan(out["mkt"].iloc[0]) and out["mkt"].iloc[1:].tolist() == [10.0, 11.0]


def test_a_series_that_ends_goes_stale_instead_of_being_carried_forever():
    cal = pd.DatetimeIndex(pd.date_range("2020-01-01", "2020-12-31", freq="B"))
    monthly = pd.DataFrame({"datetime": pd.to_datetime(["2020-01-01", "2020-02-01"]), "cpi": [1.0, 2.0]})
    out, report = build_context(cal, {"cpi": (monthly, True)}, {"cpi": 45})
    s = out.set_index("datetime")["cpi"]
    # February's value is public 03-17 and current for 62 days, to 05-18; NaN after that
    assert s["2020-05-18"] == 2.0 and np.isnan(s["2020-05-19":]).all()
    assert report["cpi"]["bars_after_end"] == int((cal > pd.Timestamp("2020-05-18")).sum()) > 0
    daily = pd.DataFrame({"datetime": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-03-02"]), "mkt": [1.0, 2.0, 3.0]})
    out, report = build_context(cal, {"mkt": (daily, False)}, {})
    s = out.set_index("datetime")["mkt"]
    # a gap of more than 10 days is a gap, not the 01-03 close for two months
    assert s["2020-01-13"] == 2.0 and np.isnan(s["2020-01-14":"2020-02-28"]).all() and s["2020-03-02"] == 3.0
    assert report["mkt"]["stale_after_days"] == 10 and report["mkt"]["bars_after_end"] == int((cal > pd.Timestamp("2020-03-12")).sum())
