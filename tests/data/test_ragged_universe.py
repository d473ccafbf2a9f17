"""A user's own universe as it comes from the wild: one file per symbol in a directory, with
dotted symbols, UTC offsets, recent IPOs and unadjusted splits.

Every refusal is one line that names the user's file (never data/raw/bars.parquet), the
column or value, and the fix; every warning is one line on the "trendfactory" logger.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendfactory.data.csv_source import load_csv_bars, symbol_from_name
from trendfactory.data.ingest import run_ingest
from trendfactory.data.synthetic import generate_bars
from trendfactory.data.universe import HistoryNeed, required_history
from trendfactory.data.validation import combine
from trendfactory.errors import DataValidationError
from trendfactory.features.build import build_features
from trendfactory.params import DataConfig, SyntheticConfig, parse_params


def symbol_frames(n_symbols: int = 3, n_bars: int = 60, seed: int = 5) -> dict[str, pd.DataFrame]:
    """Per-symbol close-only bars (Date, Close columns, as in a downloaded file)."""
    bars = generate_bars(SyntheticConfig(n_symbols=n_symbols, n_bars=n_bars, ohlcv=False), seed=seed)
    bars["datetime"] = bars["datetime"].dt.strftime("%Y-%m-%d")
    return {str(sym): part.drop(columns=["symbol"]).rename(columns={"datetime": "Date", "close": "Close"}).reset_index(drop=True) for sym, part in bars.groupby("symbol")}


def write_dir(root: Path, files: dict[str, pd.DataFrame]) -> Path:
    """One CSV per file name in ``root`` (the name as given, suffix included)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, frame in files.items():
        frame.to_csv(root / name, index=False)
    return root


def csv_cfg(path: Path, **kw) -> DataConfig:
    return DataConfig(source="csv", path=str(path), start=None, end=None, **kw)


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def warnings_of(caplog) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "trendfactory" and r.levelno == logging.WARNING]
    assert all("\n" not in line for line in lines)
    return lines


# ---- 1. symbol names from file names -------------------------------------------------------


@pytest.mark.parametrize(
    "name, symbol",
    [("BRK.B.csv", "BRK.B"), ("VOD.L.csv", "VOD.L"), ("7203.T.csv", "7203.T"), ("aapl.CSV", "aapl"), ("RDS.A.csv.gz", "RDS.A"), ("X.Y.PARQUET", "X.Y"), ("BF.B.pq", "BF.B"), ("MSFT.Csv.Gz", "MSFT")],
)
def test_symbol_is_the_file_name_minus_its_data_suffix(name, symbol):
    assert symbol_from_name(Path("/data") / name) == symbol


def test_dotted_symbols_load_as_themselves(tmp_path):
    frames = symbol_frames(4)
    files = dict(zip(["BRK.A.csv", "BRK.B.csv", "VOD.L.csv", "7203.T.csv"], frames.values()))
    root = write_dir(tmp_path / "prices", files)
    loaded, origins = load_csv_bars(root)
    assert sorted(combine(loaded)["symbol"].unique()) == ["7203.T", "BRK.A", "BRK.B", "VOD.L"]
    assert origins == {name[: -len(".csv")]: str(root / name) for name in files}


def test_gzip_and_parquet_files_with_upper_case_suffixes(tmp_path):
    a, b = list(symbol_frames(2).values())
    root = tmp_path / "prices"
    root.mkdir()
    a.to_csv(root / "RDS.A.CSV.GZ", index=False, compression="gzip")
    b.assign(Date=pd.to_datetime(b["Date"])).to_parquet(root / "BF.B.PARQUET", index=False)
    loaded, origins = load_csv_bars(root)
    bars = combine(loaded)
    assert sorted(bars["symbol"].unique()) == ["BF.B", "RDS.A"]
    np.testing.assert_allclose(bars.loc[bars["symbol"] == "RDS.A", "close"].to_numpy(), a["Close"].to_numpy())


def test_hidden_files_are_skipped(tmp_path):
    root = write_dir(tmp_path / "prices", {"AAPL.csv": next(iter(symbol_frames(1).values()))})
    (root / "._AAPL.csv").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # copied from a Mac
    loaded, origins = load_csv_bars(root)
    assert list(origins) == ["AAPL"]


def test_a_symbol_in_two_files_names_both(tmp_path):
    a = next(iter(symbol_frames(1).values()))
    # AAA.csv by its name, and a long file that also holds AAA (dates need not even overlap)
    long = a.tail(10).assign(Ticker="AAA")
    root = write_dir(tmp_path / "prices", {"AAA.csv": a.head(50), "more.csv": long})
    with pytest.raises(DataValidationError) as info:
        load_csv_bars(root)
    msg = one_line(info)
    assert msg.startswith(f"{root / 'more.csv'}: symbol AAA is also in {root / 'AAA.csv'}; ")
    assert "give each symbol's bars in one file only" in msg


# ---- 2. time stamps with UTC offsets ----------------------------------------------------------


def daily_with_offsets(frame: pd.DataFrame) -> pd.DataFrame:
    """Daily stamps at New York midnight with their offset, as yfinance-style downloads write them."""
    local = pd.to_datetime(frame["Date"]).dt.tz_localize("America/New_York")
    return frame.assign(Date=local.map(lambda t: t.isoformat(sep=" ")))


def test_daily_offsets_keep_their_day_in_the_exchange_zone(tmp_path):
    frames = {f"{s}.csv": daily_with_offsets(f) for s, f in symbol_frames(2).items()}
    root = write_dir(tmp_path / "prices", frames)
    assert next(iter(frames.values()))["Date"].iloc[0] == "2000-01-03 00:00:00-05:00"
    bars = run_ingest(csv_cfg(root, timezone="America/New_York"), seed=0).bars
    assert bars["datetime"].iloc[0] == pd.Timestamp("2000-01-03")
    assert (bars["datetime"] == bars["datetime"].dt.normalize()).all()  # still date-only daily bars
    assert bars["datetime"].dtype == "datetime64[ns]" and bars["datetime"].dt.tz is None


def test_daily_offsets_in_utc_are_the_same_day_five_hours_later(tmp_path):
    frames = {f"{s}.csv": daily_with_offsets(f) for s, f in symbol_frames(2).items()}
    root = write_dir(tmp_path / "prices", frames)
    bars = run_ingest(csv_cfg(root), seed=0).bars  # data.timezone: UTC (the default)
    assert bars["datetime"].iloc[0] == pd.Timestamp("2000-01-03 05:00")
    expected = pd.to_datetime(next(iter(symbol_frames(2).values()))["Date"]) + pd.Timedelta(hours=5)
    np.testing.assert_array_equal(bars.loc[bars["symbol"] == "SYN000", "datetime"].to_numpy(), expected.to_numpy())
    # one bar per symbol and day, and both symbols on one calendar
    assert bars.groupby(["symbol", bars["datetime"].dt.date]).size().max() == 1
    assert bars["datetime"].nunique() == 60


def hourly_across_dst() -> pd.DataFrame:
    """US equity hours 9:30..15:30 New York, from before to after the 2014-03-09 clock change."""
    days = pd.bdate_range("2014-03-05", "2014-03-12")
    local = [pd.Timestamp(f"{d.date()} {h:02d}:30", tz="America/New_York") for d in days for h in range(9, 16)]
    close = 100.0 + np.arange(len(local)) * 0.1
    return pd.DataFrame({"timestamp": [t.isoformat() for t in local], "close": close})


def test_hourly_bars_across_a_dst_change(tmp_path):
    frame = hourly_across_dst()
    assert frame["timestamp"].str.endswith("-05:00").any() and frame["timestamp"].str.endswith("-04:00").any()
    root = write_dir(tmp_path / "hourly", {"SPY.csv": frame})
    utc = run_ingest(csv_cfg(root), seed=0).bars["datetime"]
    assert utc.iloc[0] == pd.Timestamp("2014-03-05 14:30") and utc.iloc[-1] == pd.Timestamp("2014-03-12 19:30")  # EST, EDT
    ny = run_ingest(csv_cfg(root, timezone="America/New_York"), seed=0).bars["datetime"]
    assert set(ny.dt.strftime("%H:%M")) == {f"{h:02d}:30" for h in range(9, 16)}  # one wall clock all week
    assert len(ny) == len(frame) and ny.is_monotonic_increasing


def test_zone_aware_parquet_stamps_are_converted_too(tmp_path):
    frame = hourly_across_dst()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert("America/New_York")
    root = tmp_path / "hourly"
    root.mkdir()
    frame.to_parquet(root / "SPY.parquet", index=False)
    utc = run_ingest(csv_cfg(root), seed=0).bars["datetime"]
    assert utc.iloc[0] == pd.Timestamp("2014-03-05 14:30") and utc.dt.tz is None
    tokyo = run_ingest(csv_cfg(root, timezone="Asia/Tokyo"), seed=0).bars["datetime"]
    assert tokyo.iloc[0] == pd.Timestamp("2014-03-05 23:30")


def test_mixed_naive_and_offset_stamps_fail_naming_file_and_column(tmp_path):
    frame = next(iter(symbol_frames(1).values()))
    frame.loc[3, "Date"] = "2000-01-06 00:00:00-05:00"
    root = write_dir(tmp_path / "prices", {"AAA.csv": frame})
    with pytest.raises(DataValidationError) as info:
        run_ingest(csv_cfg(root), seed=0)
    assert one_line(info) == (
        f"{root / 'AAA.csv'}: symbol AAA, column datetime, data row 4: '2000-01-06 00:00:00-05:00' has a UTC offset "
        "but data row 1 '2000-01-03' has none; give every stamp an offset, or none (stamps without one are taken "
        "as data.timezone UTC)"
    )


def test_clocks_going_back_in_the_chosen_zone_say_so(tmp_path):
    # Round-the-clock bars: 01:00 EDT and 01:00 EST are one local time in New York.
    stamps = pd.date_range("2014-11-02 04:00", periods=4, freq="h", tz="UTC")
    frame = pd.DataFrame({"time": [t.isoformat() for t in stamps], "close": [1.0, 1.1, 1.2, 1.3]})
    root = write_dir(tmp_path / "fx", {"EURUSD.csv": frame})
    assert len(run_ingest(csv_cfg(root), seed=0).bars) == 4  # UTC: no clock change
    with pytest.raises(
        DataValidationError,
        match=r"EURUSD\.csv: symbol EURUSD, column datetime, data row 3: duplicate bar at "
        r"2014-11-02 01:00:00; .*data\.timezone America/New_York, whose clocks may go back an hour: set "
        r"data\.timezone: UTC",
    ) as info:
        run_ingest(csv_cfg(root, timezone="America/New_York"), seed=0)
    one_line(info)


# ---- 3. data.min_history ------------------------------------------------------------------------

SMALL_FEATURES = {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20], "vol_windows": [20], "context_lookbacks": [5, 20]}


def small_params(root: Path, policy: str = "drop"):
    return parse_params(
        {
            "data": {"source": "csv", "path": str(root), "start": None, "end": None, "min_history": policy},
            "features": SMALL_FEATURES,
            "label": {"horizons": [5]},
            "split": {"scheme": "fixed", "train_end": "2000-10-31", "val_end": "2001-01-31", "embargo": 5},
        }
    )


def universe_with_ipo(tmp_path: Path, ipo_bars: int = 40) -> tuple[Path, HistoryNeed]:
    """Three symbols with 300 business days of history, and NEW.csv listed only ``ipo_bars`` ago."""
    frames = symbol_frames(4, n_bars=300)
    files = {f"{s}.csv": f for s, f in list(frames.items())[:3]}
    files["NEW.csv"] = list(frames.values())[3].tail(ipo_bars)
    root = write_dir(tmp_path / "prices", files)
    return root, required_history(small_params(root).features, small_params(root).label)


def test_required_history_is_featurize_own_minimum(tmp_path):
    root, need = universe_with_ipo(tmp_path)
    params = small_params(root)
    raw = run_ingest(params.data, params.seed)  # no history given: nothing dropped at ingest
    with pytest.raises(DataValidationError) as info:
        build_features(raw.bars, raw.context, params)
    assert f"symbol NEW has 40 bars, fewer than the {need.bars} needed ({need.why})" in one_line(info)
    assert need.why == "49 warm-up bars + entry lag 1 + horizon 5 + 1" and need.bars == 56


def test_min_history_drop_leaves_the_symbol_out_and_the_rest_runs_through(tmp_path, caplog):
    root, need = universe_with_ipo(tmp_path)
    params = small_params(root, "drop")
    with caplog.at_level(logging.WARNING, logger="trendfactory"):
        raw = run_ingest(params.data, params.seed, history=need)
    assert warnings_of(caplog) == [f"NEW ({root / 'NEW.csv'}): 40 bars, fewer than the 56 needed (49 warm-up bars + entry lag 1 + horizon 5 + 1); dropped from the universe (data.min_history: drop)"]
    assert sorted(raw.bars["symbol"].unique()) == ["SYN000", "SYN001", "SYN002"]
    assert raw.manifest["dropped_symbols"] == {"NEW": {"file": str(root / "NEW.csv"), "bars": 40, "needed": 56}}
    assert raw.manifest["n_symbols"] == 3 and "NEW" not in raw.manifest["symbols"]
    assert raw.manifest["origins"] == {s: str(root / f"{s}.csv") for s in ("SYN000", "SYN001", "SYN002")}
    result = build_features(raw.bars, raw.context, params)
    assert set(result.frame["symbol"]) == {"SYN000", "SYN001", "SYN002"}
    assert result.schema["symbols"] == 3


def test_a_symbol_of_exactly_the_minimum_is_kept(tmp_path):
    root, need = universe_with_ipo(tmp_path, ipo_bars=56)
    params = small_params(root, "error")
    raw = run_ingest(params.data, params.seed, history=need)
    assert (raw.bars["symbol"] == "NEW").sum() == need.bars
    build_features(raw.bars, raw.context, params)


def test_min_history_error_names_the_users_file(tmp_path):
    root, need = universe_with_ipo(tmp_path)
    params = small_params(root, "error")
    with pytest.raises(DataValidationError) as info:
        run_ingest(params.data, params.seed, history=need)
    assert one_line(info) == (
        f"{root / 'NEW.csv'}: symbol NEW has 40 bars, fewer than the 56 needed (49 warm-up bars + entry lag 1 + horizon 5 + 1); "
        "give it more history, set data.min_history: drop to leave such symbols out, or shorten the lookbacks/horizons "
        "in params.yaml"
    )
    assert "bars.parquet" not in str(info.value)


def test_min_history_counts_within_the_date_range(tmp_path):
    # The user's file may hold more bars than data.start..data.end lets through: say where they were counted.
    root, _ = universe_with_ipo(tmp_path)
    cfg = DataConfig(source="csv", path=str(root), start="2000-06-01", end=None, min_history="error")
    with pytest.raises(DataValidationError) as info:
        run_ingest(cfg, 0, history=HistoryNeed(100, "test"))
    assert one_line(info).startswith(f"{root / 'NEW.csv'}: symbol NEW has 40 bars from data.start 2000-06-01, fewer than the 100 needed (test); ")


@pytest.mark.parametrize("policy", ["drop", "error"])
def test_every_symbol_too_short_is_an_error_whatever_the_policy(tmp_path, policy):
    root = write_dir(tmp_path / "prices", {f"{s}.csv": f for s, f in symbol_frames(3, n_bars=30).items()})
    with pytest.raises(DataValidationError) as info:
        run_ingest(csv_cfg(root, min_history=policy), 0, history=HistoryNeed(56, "49 warm-up bars + entry lag 1 + horizon 5 + 1"))
    msg = one_line(info)
    assert msg.startswith(f"{root / 'SYN000.csv'}: every symbol has fewer than the 56 bars needed ")
    assert "the longest, SYN000, has 30; give more history or shorten the lookbacks/horizons in params.yaml" in msg


# ---- 4. unadjusted splits (data.on_jump) -----------------------------------------------------


def split_universe(tmp_path: Path, splits: dict[str, list[int]], n_bars: int = 60) -> Path:
    """Three symbols; each listed symbol's closes before bar k are 7x (a 7:1 split never adjusted)."""
    files = {}
    for sym, frame in symbol_frames(3, n_bars=n_bars).items():
        for k in splits.get(sym, []):
            frame.loc[: k - 1, "Close"] *= 7.0
        files[f"{sym}.csv"] = frame
    return write_dir(tmp_path / "prices", files)


def test_an_unadjusted_split_is_a_one_line_warning(tmp_path, caplog):
    root = split_universe(tmp_path, {"SYN001": [30]})
    with caplog.at_level(logging.WARNING, logger="trendfactory"):
        res = run_ingest(csv_cfg(root), seed=0)
    [line] = warnings_of(caplog)
    day = pd.bdate_range("2000-01-03", periods=60)[30].date()
    assert line.startswith(f"SYN001 ({root / 'SYN001.csv'}) {day}: close moved x0.1")  # 1/7 times that day's return
    assert "while the other symbols' median moved x" in line
    assert line.endswith("looks like an unadjusted split; adjust the prices (or give an adjusted close column) or set data.on_jump: error to stop on such moves")
    assert res.manifest["suspect_jumps"] == [{"symbol": "SYN001", "datetime": f"{day} 00:00:00", "ratio": pytest.approx(1 / 7, rel=0.2), "file": str(root / "SYN001.csv")}]
    assert len(res.bars) == 180  # warn keeps the bars


def test_on_jump_error_stops_at_the_first_and_counts_the_rest(tmp_path):
    root = split_universe(tmp_path, {"SYN001": [30], "SYN002": [20, 45]})
    with pytest.raises(DataValidationError) as info:
        run_ingest(csv_cfg(root, on_jump="error"), seed=0)
    msg = one_line(info)
    day = pd.bdate_range("2000-01-03", periods=60)[20].date()
    assert msg.startswith(f"SYN002 ({root / 'SYN002.csv'}) {day}: close moved x")
    assert msg.endswith("looks like an unadjusted split (and 2 more such jump(s)); adjust the prices (or give an adjusted close column) or set data.on_jump: warn to keep them")


def test_a_move_the_whole_universe_shares_is_not_a_split(tmp_path, caplog):
    root = split_universe(tmp_path, {"SYN000": [30], "SYN001": [30], "SYN002": [30]})  # a market-wide crash
    with caplog.at_level(logging.WARNING, logger="trendfactory"):
        run_ingest(csv_cfg(root, on_jump="error"), seed=0)
    assert warnings_of(caplog) == []


def test_a_jump_within_the_ratio_or_one_that_reverts_is_not_flagged(tmp_path):
    frames = symbol_frames(3)
    frames["SYN000"].loc[30:, "Close"] /= 2.5  # x0.4: inside jump_ratio 3
    frames["SYN001"].loc[40, "Close"] *= 5.0  # one bad print: up x5, back down the next bar
    root = write_dir(tmp_path / "prices", {f"{s}.csv": f for s, f in frames.items()})
    run_ingest(csv_cfg(root, on_jump="error"), seed=0)
    with pytest.raises(DataValidationError, match=r"SYN000 .* close moved x0\.[34]\d* in one bar .*unadjusted split; adjust"):
        run_ingest(csv_cfg(root, on_jump="error", jump_ratio=2.0), seed=0)


def test_a_symbol_alone_on_its_date_is_judged_on_its_own_move(tmp_path):
    frames = symbol_frames(2)
    lone = frames["SYN001"]
    lone["Date"] = pd.bdate_range("2010-01-04", periods=len(lone)).strftime("%Y-%m-%d")  # no overlap with SYN000
    lone.loc[:29, "Close"] *= 7.0
    root = write_dir(tmp_path / "prices", {f"{s}.csv": f for s, f in frames.items()})
    assert lone["Date"].iloc[30] == "2010-02-15"
    with pytest.raises(
        DataValidationError,
        match=r"SYN001 \(.*SYN001\.csv\) 2010-02-15: close moved x0\.1\d\d in one bar "
        r"\(.*\) while no other symbol has a bar then; looks like an unadjusted split; ",
    ):
        run_ingest(csv_cfg(root, on_jump="error"), seed=0)


def test_intraday_jumps_name_the_bar_time(tmp_path):
    frame = hourly_across_dst()
    frame.loc[20:, "close"] /= 4.0  # row 20: 2014-03-07 15:30 New York (EST) = 20:30 UTC
    root = write_dir(tmp_path / "hourly", {"SPY.csv": frame})
    with pytest.raises(DataValidationError, match=r"SPY \(.*SPY\.csv\) 2014-03-07 20:30:00: close moved x0\.25"):
        run_ingest(csv_cfg(root, on_jump="error"), seed=0)


@pytest.mark.parametrize("dataset", ["sp500_large_caps", "us_ohlcv"])
def test_the_embedded_data_has_no_suspect_jump(dataset):
    cfg = DataConfig(source="embedded", dataset=dataset, start=None, end=None, context="none", on_jump="error")
    run_ingest(cfg, seed=0)  # the whole dataset, not only data.start..data.end, through ingest's own jump check
