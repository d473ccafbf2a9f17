"""Every validation rule, table-driven: one-line errors naming file, symbol, column, row and fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.data.csv_source import load_csv_bars
from trendfactory.data.validation import check_min_length, combine
from trendfactory.errors import DataValidationError


def good_frame() -> pd.DataFrame:
    dates = pd.date_range("2020-01-01", periods=5, freq="B").strftime("%Y-%m-%d")
    rows = []
    for sym in ("AAA", "BBB"):
        for i, d in enumerate(dates):
            c = 10.0 + i
            rows.append({"Ticker": sym, "Date": d, "Open": c, "High": c + 1, "Low": c - 1, "Close": c, "Volume": 1000 + i})
    return pd.DataFrame(rows)


def set_cell(frame, row, col, value):
    frame = frame.copy()
    frame[col] = frame[col].astype(object)
    frame.loc[row, col] = value
    return frame


CASES = [
    # (mutation, regex the message must match)
    (lambda f: f.drop(columns=["Close"]), r"bars\.csv: missing column\(s\) close .*bars need symbol, datetime and close"),
    (lambda f: f.drop(columns=["Date"]), r"bars\.csv: missing column\(s\) datetime"),
    (lambda f: set_cell(f, 2, "Close", np.nan), r"bars\.csv: symbol AAA, column close, data row 3: close is nan \(NaN/inf\); fill or drop"),
    (lambda f: set_cell(f, 7, "High", np.inf), r"bars\.csv: symbol BBB, column high, data row 8: high is inf"),
    (lambda f: set_cell(f, 1, "Close", "abc"), r"bars\.csv: symbol AAA, column close, data row 2: value 'abc' is not a number"),
    (lambda f: set_cell(f, 3, "Close", 0.0), r"bars\.csv: symbol AAA, column close, data row 4: price 0\.0 is not positive"),
    (lambda f: set_cell(f, 6, "Low", -2.0), r"bars\.csv: symbol BBB, column low, data row 7: price -2\.0 is not positive"),
    (lambda f: set_cell(f, 4, "Volume", -5), r"bars\.csv: symbol AAA, column volume, data row 5: volume -5\.0 is negative"),
    (lambda f: set_cell(f, 5, "High", 1.0), r"bars\.csv: symbol BBB, column high, data row 6: high 1\.0 < low .* swapped or corrupt"),
    (lambda f: set_cell(f, 2, "Date", f.loc[1, "Date"]), r"bars\.csv: symbol AAA, column datetime, data row 3: duplicate bar at 2020-01-02"),
    (lambda f: set_cell(f, 1, "Date", "2019-12-01"), r"bars\.csv: symbol AAA, column datetime, data row 2: time goes backwards \(2019-12-01 00:00:00 after 2020-01-01 00:00:00\); sort the file"),
    (lambda f: set_cell(f, 0, "Date", "not a date"), r"bars\.csv: symbol AAA, column datetime, data row 1: cannot parse 'not a date'"),
    (lambda f: f.drop(columns=["Low"]), r"bars\.csv: column high present without its pair"),
    (lambda f: f.iloc[:0], r"bars\.csv: no rows"),
    (lambda f: f.assign(Price=f["Close"]), r"bars\.csv: columns 'Close' and 'Price' both look like close"),
]


@pytest.mark.parametrize("mutate, match", CASES)
def test_bad_csv_fails_with_one_line(tmp_path, mutate, match):
    path = tmp_path / "bars.csv"
    mutate(good_frame()).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=match) as info:
        load_csv_bars(path)
    assert "\n" not in str(info.value)


def test_good_csv_loads_with_aliases(tmp_path):
    path = tmp_path / "bars.csv"
    good_frame().to_csv(path, index=False)
    frames, origins = load_csv_bars(path)
    bars = combine(frames)
    assert list(bars.columns) == ["symbol", "datetime", "open", "high", "low", "close", "volume"]
    assert origins == {"AAA": str(path), "BBB": str(path)}
    assert bars["datetime"].dtype == "datetime64[ns]"


def test_directory_of_symbol_files_and_adjusted_close(tmp_path):
    f = good_frame()
    for sym, part in f.groupby("Ticker"):
        part = part.drop(columns=["Ticker"]).rename(columns={"Date": "timestamp"})
        part["Adj Close"] = part["Close"] / 2  # a 2:1 split adjustment
        part.to_csv(tmp_path / f"{sym}.csv", index=False)
    frames, origins = load_csv_bars(tmp_path)
    bars = combine(frames)
    assert sorted(bars["symbol"].unique()) == ["AAA", "BBB"]
    # adjusted close replaces close and scales open/high/low by the same factor
    row = bars.iloc[0]
    assert row["close"] == 5.0 and row["high"] == 5.5 and row["low"] == 4.5
    assert origins["BBB"].endswith("BBB.csv")


def test_symbol_in_two_files_is_rejected(tmp_path):
    # Caught while reading, where both files are known (combine() could name neither).
    f = good_frame()
    f.to_csv(tmp_path / "one.csv", index=False)
    f.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataValidationError, match=r"two\.csv: symbol AAA is also in .*one\.csv; give each symbol's bars in one file only"):
        load_csv_bars(tmp_path)


def test_combine_still_rejects_overlapping_frames():
    # The last guard for sources that bypass load_csv_bars (embedded loaders, the scorer).
    from trendfactory.data.validation import validate_bars

    frame = validate_bars(good_frame().rename(columns={"Ticker": "symbol", "Date": "datetime", "Close": "close"})[["symbol", "datetime", "close"]], "x")
    with pytest.raises(DataValidationError, match=r"symbol AAA appears in more than one file"):
        combine([frame, frame])


def test_long_file_without_symbol_column(tmp_path):
    path = tmp_path / "bars.csv"
    good_frame().drop(columns=["Ticker"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"bars\.csv: no symbol column"):
        load_csv_bars(path)


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(DataValidationError, match=r"no such file or directory; set data\.path"):
        load_csv_bars(tmp_path / "nope")
    with pytest.raises(DataValidationError, match=r"no \.csv or \.parquet files"):
        load_csv_bars(tmp_path)


def test_too_short_symbol(tmp_path):
    path = tmp_path / "bars.csv"
    good_frame().to_csv(path, index=False)
    frames, origins = load_csv_bars(path)
    with pytest.raises(DataValidationError, match=r"bars\.csv: symbol AAA has 5 bars, fewer than the 300 needed \(warm-up\) \(and 1 more symbol\(s\)\)"):
        check_min_length(combine(frames), 300, origins, "warm-up")


def test_close_only_source_drops_empty_columns(tmp_path):
    f = good_frame()
    f["High"] = np.nan
    f["Low"] = np.nan
    path = tmp_path / "bars.csv"
    f.to_csv(path, index=False)
    frames, _ = load_csv_bars(path)
    assert "high" not in frames[0].columns and "low" not in frames[0].columns


def test_cli_validate(tmp_path, capsys):
    from trendfactory.cli import main

    path = tmp_path / "bars.csv"
    good_frame().to_csv(path, index=False)
    main(["validate", "--input", str(path)])
    assert "ok:" in capsys.readouterr().out
    set_cell(good_frame(), 3, "Close", -1.0).to_csv(path, index=False)
    with pytest.raises(SystemExit) as info:
        main(["validate", "--input", str(path)])
    assert info.value.code == 1
    assert "data row 4: price -1.0 is not positive" in capsys.readouterr().err
