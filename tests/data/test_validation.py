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


def long_frame(n: int = 300, symbols=("AAA", "BBB")) -> pd.DataFrame:
    """Bars long enough for the default features' warm-up and horizons (221 bars)."""
    dates = pd.bdate_range("2020-01-01", periods=n).strftime("%Y-%m-%d")
    rng = np.random.default_rng(0)
    parts = []
    for sym in symbols:
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        parts.append(pd.DataFrame({"Ticker": sym, "Date": dates, "Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close, "Volume": 1000.0}))
    return pd.concat(parts, ignore_index=True)


def validate_cli(tmp_path, capsys, frame: pd.DataFrame, **data) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `trendfactory validate` on ``frame`` with params.yaml's data keys ``data``."""
    import yaml

    from trendfactory.cli import main

    path, params = tmp_path / "bars.csv", tmp_path / "params.yaml"
    frame.to_csv(path, index=False)
    params.write_text(yaml.safe_dump({"data": {"start": None, "end": None, **data}}))
    try:
        main(["validate", "--input", str(path), "--params", str(params)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_validate(tmp_path, capsys):
    code, out, _ = validate_cli(tmp_path, capsys, long_frame())
    assert code == 0 and out.startswith(f"ok: {tmp_path / 'bars.csv'}: 600 bars, 2 symbols, 2020-01-01 00:00:00 .. ")
    code, _, err = validate_cli(tmp_path, capsys, set_cell(long_frame(), 3, "Close", -1.0))
    assert code == 1
    assert "data row 4: price -1.0 is not positive" in err


def test_cli_validate_applies_ingests_history_rule(tmp_path, capsys):
    # one 2-bar file: nothing left to learn from, ingest refuses it
    code, out, err = validate_cli(tmp_path, capsys, good_frame().iloc[:2])
    assert code == 1 and "ok" not in out
    assert "every symbol has fewer than the 221 bars needed (199 warm-up bars + entry lag 1 + horizon 20 + 1)" in err
    # a 2-bar symbol beside a long one: ingest drops it (data.min_history: drop), or stops (error)
    frame = pd.concat([long_frame(symbols=("AAA",)), long_frame(2, symbols=("NEW",))], ignore_index=True)
    code, out, err = validate_cli(tmp_path, capsys, frame)
    assert code == 0 and not out.startswith("ok")
    assert f"warning: NEW ({tmp_path / 'bars.csv'}): 2 bars, fewer than the 221 needed" in err
    assert out.startswith(f"warning: {tmp_path / 'bars.csv'}: ingest would drop 1 symbol(s) too short") and "300 bars, 1 symbols" in out
    code, _, err = validate_cli(tmp_path, capsys, frame, min_history="error")
    assert code == 1 and "symbol NEW has 2 bars, fewer than the 221 needed" in err


def test_cli_validate_applies_ingests_jump_rule(tmp_path, capsys):
    frame = long_frame()
    frame.loc[150:299, ["Open", "High", "Low", "Close"]] /= 10.0  # AAA: a one-bar 10x drop that holds (an unadjusted split)
    code, out, err = validate_cli(tmp_path, capsys, frame)
    assert code == 0 and not out.startswith("ok")
    assert "AAA (" in err and "close moved x0.0997 in one bar" in err and "looks like an unadjusted split" in err
    assert "ingest would warn of 1 suspect jump(s) (data.on_jump: warn)" in out
    code, _, err = validate_cli(tmp_path, capsys, frame, on_jump="error")
    assert code == 1 and "AAA (" in err and "looks like an unadjusted split" in err


def test_cli_validate_applies_data_timezone(tmp_path, capsys):
    frame = long_frame(symbols=("AAA",))
    frame["Date"] = frame["Date"] + " 16:00:00-05:00"
    _, out, _ = validate_cli(tmp_path, capsys, frame)
    assert "2020-01-01 21:00:00 .. " in out  # UTC, the default
    _, out, _ = validate_cli(tmp_path, capsys, frame, timezone="America/New_York")
    assert "2020-01-01 16:00:00 .. " in out
