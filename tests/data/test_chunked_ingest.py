"""Ingest a chunk of symbols at a time (data.chunk_symbols): the synthetic generator makes the
same numbers for any chunk, every source gives the bars, manifest and context of one chunk, the
universe-wide checks (data.min_history, data.on_jump) still judge the whole universe, and the
stage's streamed bars.parquet is written whole or not at all."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trendfactory.data.chunks import FrameChunks, ParquetChunks
from trendfactory.data.ingest import run_ingest
from trendfactory.data.synthetic import SyntheticGenerator, generate_bars
from trendfactory.data.universe import HistoryNeed, required_history
from trendfactory.errors import DataValidationError
from trendfactory.params import DataConfig, SyntheticConfig, parse_params
from trendfactory.stages import ingest as ingest_stage


def assert_same_ingest(a, b) -> None:
    pd.testing.assert_frame_equal(a.bars, b.bars, check_exact=True)
    pd.testing.assert_frame_equal(a.context, b.context, check_exact=True)
    assert a.manifest == b.manifest


@pytest.mark.parametrize(
    "cfg",
    [
        SyntheticConfig(n_symbols=11, n_bars=80),
        SyntheticConfig(n_symbols=7, n_bars=60, signal_strength=0.5, ohlcv=False),
    ],
    ids=["ohlcv", "close-only-with-signal"],
)
def test_the_generator_draws_the_same_numbers_for_any_chunk(cfg):
    whole = generate_bars(cfg, seed=3)
    for every in (1, 3, 4, cfg.n_symbols):
        gen = SyntheticGenerator(cfg, seed=3, every=every)
        cuts = [0, 2, 5, 6, cfg.n_symbols]  # ranges that start and end between the recorded states
        parts = [gen.bars(a, b) for a, b in zip(cuts[:-1], cuts[1:])]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=True)


def test_synthetic_ingest_in_chunks_equals_one_chunk():
    cfg = SyntheticConfig(n_symbols=12, n_bars=120)
    one = run_ingest(DataConfig(source="synthetic", synthetic=cfg, start="2000-02-01", end=None), seed=1)
    chunked = run_ingest(DataConfig(source="synthetic", synthetic=cfg, start="2000-02-01", end=None, chunk_symbols=5), seed=1)
    assert_same_ingest(one, chunked)
    assert one.manifest["rows"] == 12 * (120 - 21)  # February on


def test_more_than_a_thousand_synthetic_symbols_come_in_name_order():
    # SYN1000 sorts between SYN100 and SYN101: a chunk of names is several runs of the generator's numbers
    cfg = SyntheticConfig(n_symbols=1003, n_bars=3, ohlcv=False)
    one = run_ingest(DataConfig(source="synthetic", synthetic=cfg, start=None, end=None), seed=2)
    chunked = run_ingest(DataConfig(source="synthetic", synthetic=cfg, start=None, end=None, chunk_symbols=250), seed=2)
    assert_same_ingest(one, chunked)
    assert list(one.bars["symbol"].unique()[100:103]) == ["SYN100", "SYN1000", "SYN1001"]


def universe_dir(root: Path) -> Path:
    """Per-symbol files: 9 symbols over 300 business days, IPO (40 bars), an unadjusted 1:7
    split in SYN005 and a market-wide crash every symbol shares (not a split)."""
    bars = generate_bars(SyntheticConfig(n_symbols=10, n_bars=300, ohlcv=False), seed=5)
    root.mkdir()
    for i, (sym, part) in enumerate(bars.groupby("symbol")):
        frame = part.drop(columns="symbol").rename(columns={"datetime": "Date", "close": "Close"}).reset_index(drop=True)
        frame.loc[:149, "Close"] *= 4.0  # the whole universe drops to a quarter on day 150
        if sym == "SYN005":
            frame.loc[:199, "Close"] *= 7.0
        name = "IPO" if i == 9 else sym
        (frame.tail(40) if name == "IPO" else frame).to_csv(root / f"{name}.csv", index=False)
    return root


def test_a_directory_in_chunks_is_judged_as_a_whole(tmp_path, caplog):
    root = universe_dir(tmp_path / "prices")
    need = HistoryNeed(56, "test")
    results, warnings = [], []
    for chunk in (250, 2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="trendfactory"):
            results.append(run_ingest(DataConfig(source="csv", path=str(root), start=None, end=None, chunk_symbols=chunk), 0, history=need))
        warnings.append([r.getMessage() for r in caplog.records if r.name == "trendfactory"])
    assert_same_ingest(*results)
    assert warnings[0] == warnings[1] and len(warnings[0]) == 2  # the IPO dropped, SYN005's split
    m = results[0].manifest
    assert list(m["dropped_symbols"]) == ["IPO"] and m["n_symbols"] == 9
    assert [j["symbol"] for j in m["suspect_jumps"]] == ["SYN005"]  # the crash is shared: not flagged


def stage_params(root: Path, on_jump: str):
    return parse_params(
        {
            "data": {"source": "csv", "path": str(root), "start": None, "end": None, "chunk_symbols": 2, "on_jump": on_jump},
            "features": {"ma_windows": [10, 20], "return_lookbacks": [1, 5], "vol_windows": [10]},
            "label": {"horizons": [5]},
        }
    )


def test_on_jump_error_in_a_late_chunk_leaves_no_bars_file(tmp_path, monkeypatch):
    root = universe_dir(tmp_path / "prices")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(DataValidationError, match=r"^SYN005 \(.*SYN005\.csv\) .*: close moved x0\.14"):
        ingest_stage.main_body(stage_params(root, "error"), None)
    assert sorted(p.name for p in (work / "data" / "raw").iterdir()) == []  # neither bars.parquet nor a temp file
    # with on_jump: warn the universe is written whole, one row group per chunk of 2 symbols
    params = stage_params(root, "warn")
    ingest_stage.main_body(params, None)
    path = work / "data" / "raw" / "bars.parquet"
    assert pq.ParquetFile(path).num_row_groups == 5  # 9 symbols: the IPO is too short
    in_memory = run_ingest(params.data, params.seed, history=required_history(params.features, params.label))
    pd.testing.assert_frame_equal(pd.read_parquet(path), in_memory.bars, check_exact=True)
    assert in_memory.manifest["n_symbols"] == 9


def test_parquet_chunks_hold_whole_symbols_whatever_the_row_groups(tmp_path):
    bars = generate_bars(SyntheticConfig(n_symbols=7, n_bars=30, ohlcv=False), seed=1)
    path = tmp_path / "bars.parquet"
    bars.to_parquet(path, index=False, row_group_size=13)  # row groups cut through symbols
    for chunk in (1, 3, 7, 50):
        parts = list(ParquetChunks(path, chunk))
        assert [p["symbol"].nunique() for p in parts] == [min(chunk, 7 - i * chunk) for i in range(len(parts))]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), pd.read_parquet(path), check_exact=True)
        again = list(ParquetChunks(path, chunk, columns=["symbol", "close"]))  # re-iterable, column subset
        assert [len(p) for p in again] == [len(p) for p in parts] and list(again[0].columns) == ["symbol", "close"]


def test_a_symbol_split_in_two_blocks_is_refused(tmp_path):
    bars = generate_bars(SyntheticConfig(n_symbols=3, n_bars=10, ohlcv=False), seed=1)
    shuffled = pd.concat([bars.iloc[:5], bars.iloc[10:], bars.iloc[5:10]], ignore_index=True)
    path = tmp_path / "bars.parquet"
    shuffled.to_parquet(path, index=False)
    with pytest.raises(DataValidationError, match=r"bars\.parquet: symbol SYN000 appears again at row 25 after other symbols; rows must be sorted"):
        ParquetChunks(path, 2)
    with pytest.raises(DataValidationError, match=r"^mine: symbol SYN000 appears again at row 25 "):
        FrameChunks(shuffled, 2, origin="mine")
    assert np.array_equal(next(iter(FrameChunks(bars, 5)))["close"], bars["close"])  # one chunk: the frame itself
