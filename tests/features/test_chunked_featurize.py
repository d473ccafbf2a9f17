"""A universe processed a chunk of symbols at a time (data.chunk_symbols) gives what it gives in
one chunk: ingest -> featurize -> window through the stages (bars.parquet and features.parquet
streamed chunk by chunk), and build_features in memory.

Exact: everything per symbol that is not a torch indicator (symbol, datetime, labels, forward
returns, scores, fold roles, split reports, class balance, the schema) and the breadth shares
(integer counts per date). To rounding: the equal-weight index and return dispersion (per-date
means and variances merged across chunks), each fold's scaler (train means and variances merged
across chunks; ~1e-14 relative), and the stock indicators -- torch's CPU matmul, which the
indicators' linear scans use, rounds a row differently depending on how many symbols share the
batch (~1e-11 relative in float64; the float32 features almost never move).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trendfactory.data.chunks import FrameChunks
from trendfactory.data.synthetic import generate_bars
from trendfactory.features.build import build_features, featurize
from trendfactory.io import parquet_stream
from trendfactory.params import SyntheticConfig, parse_params
from trendfactory.stages import featurize as featurize_stage
from trendfactory.stages import ingest as ingest_stage
from trendfactory.stages import window as window_stage

N_SYMBOLS = 12
CHUNK = 5  # chunks of 5, 5 and 2 symbols (fewer once the IPO is dropped)
EXACT_PREFIXES = ("label_", "ret_", "score_", "fold_", "ctx_breadth_")
FEATURE_RTOL, FEATURE_ATOL = 1e-6, 1e-9  # a float32 rounding flipped by a float64 difference of ~1e-11
SCALER_RTOL = 1e-9


def ragged_bars() -> pd.DataFrame:
    """12 symbols x 900 business days: SYN003 lists late, SYN007 delists early, SYN010 skips 11
    days (dates the universe does not share), SYN011 has too little history (an IPO)."""
    bars = generate_bars(SyntheticConfig(n_symbols=N_SYMBOLS, n_bars=900, start="2000-01-03", signal_strength=0.3), seed=4)
    day, sym = bars.groupby("symbol").cumcount(), bars["symbol"]
    drop = ((sym == "SYN003") & (day < 200)) | ((sym == "SYN007") & (day >= 700))
    drop |= ((sym == "SYN010") & day.between(300, 310)) | ((sym == "SYN011") & (day < 850))
    return bars[~drop].reset_index(drop=True)


def make_params(chunk: int, path: Path | None = None):
    """The user's directory ``path`` as the source (the data section does not matter to build_features)."""
    source = {"source": "csv", "path": str(path)} if path else {"source": "synthetic"}
    return parse_params(
        {
            "data": {**source, "start": None, "end": None, "chunk_symbols": chunk},
            "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20], "vol_windows": [20]},
            "label": {"horizons": [5, 10]},
            "split": {"scheme": "walk_forward", "test_start": "2002-01-01", "fold": 1, "val_years": 1, "embargo": 5},
            "window": {"seq_len": 8},
        }
    )


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal frames: exact where it can be, features to float32 rounding."""
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if col in ("symbol", "datetime") or col.startswith(EXACT_PREFIXES):
            pd.testing.assert_series_equal(a[col], b[col], check_exact=True, obj=col)
        else:
            assert a[col].dtype == b[col].dtype == np.float32, col
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=FEATURE_RTOL, atol=FEATURE_ATOL, err_msg=col)


def assert_same_folds(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k != "scaler"} == {k: v for k, v in y.items() if k != "scaler"}
        assert list(x["scaler"]) == list(y["scaler"])
        for col, p in x["scaler"].items():
            q = y["scaler"][col]
            assert p["kind"] == q["kind"], col
            np.testing.assert_allclose([p["mean"], p["std"]], [q["mean"], q["std"]], rtol=SCALER_RTOL, err_msg=col)


def run_stages(root: Path, prices: Path, chunk: int, monkeypatch) -> Path:
    """ingest, featurize and window as `dvc repro` runs them (their main bodies, in ``root``)."""
    root.mkdir()
    monkeypatch.chdir(root)
    params = make_params(chunk, prices)
    for stage in (ingest_stage, featurize_stage, window_stage):
        stage.main_body(params, None)
    monkeypatch.undo()
    return root / "data"


@pytest.fixture(scope="module")
def prices(tmp_path_factory) -> Path:
    """The ragged universe as a user's directory of per-symbol CSV files."""
    root = tmp_path_factory.mktemp("prices")
    for sym, part in ragged_bars().groupby("symbol"):
        part.drop(columns="symbol").to_csv(root / f"{sym}.csv", index=False)
    return root


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory, prices) -> tuple[Path, Path]:
    """The data layer built in one chunk and in chunks of CHUNK symbols."""
    mp = pytest.MonkeyPatch()
    try:
        root = tmp_path_factory.mktemp("runs")
        return run_stages(root / "one", prices, 1000, mp), run_stages(root / "chunked", prices, CHUNK, mp)
    finally:
        mp.undo()


def test_build_features_in_chunks_equals_one_chunk():
    bars = ragged_bars()
    bars = bars[bars["symbol"] != "SYN011"].reset_index(drop=True)  # too short: ingest would drop it
    context = pd.DataFrame({"datetime": np.sort(bars["datetime"].unique())})
    one = build_features(bars, context, make_params(1000))
    chunked = build_features(bars, context, make_params(CHUNK))
    assert_same_rows(one.frame, chunked.frame)
    assert one.schema == chunked.schema
    assert_same_folds(one.folds, chunked.folds)
    assert one.frame.index.equals(pd.RangeIndex(len(bars)))  # bars order, a fresh index either way
    pd.testing.assert_frame_equal(one.frame[["symbol", "datetime"]], bars[["symbol", "datetime"]])


def test_a_feature_some_fold_cannot_use_is_dropped_from_every_chunk(tmp_path):
    bars = ragged_bars()
    bars = bars[bars["symbol"] != "SYN011"].reset_index(drop=True)
    dates = pd.DatetimeIndex(np.sort(bars["datetime"].unique()))
    vix = np.where(dates >= pd.Timestamp("2001-01-01"), 20.0 + np.arange(len(dates)) % 7, np.nan)  # from fold 0's validation on
    context = pd.DataFrame({"datetime": dates, "vix": vix})
    one = build_features(bars, context, make_params(1000))
    chunked = build_features(bars, context, make_params(CHUNK))
    assert set(one.schema["dropped_features"]) == {"ctx_vix", "ctx_vix_chg_5"}
    assert one.schema == chunked.schema
    assert_same_rows(one.frame, chunked.frame)
    assert not set(one.schema["dropped_features"]) & set(one.frame.columns)
    with parquet_stream(tmp_path / "features.parquet") as stream:  # the stage's sink: the file is rewritten without them
        schema, _ = featurize(FrameChunks(bars, CHUNK), context, make_params(CHUNK), stream)
    assert schema == chunked.schema
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "features.parquet"), chunked.frame, check_exact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.parquet"]


def test_the_stages_stream_chunks_and_write_what_one_chunk_writes(pipelines):
    one, chunked = pipelines
    manifest = json.loads((chunked / "raw" / "manifest.json").read_text())
    assert manifest["dropped_symbols"].keys() == {"SYN011"} and manifest["n_symbols"] == 11
    assert manifest == json.loads((one / "raw" / "manifest.json").read_text())
    # one row group per chunk: 5 + 5 + 1 symbols
    assert pq.ParquetFile(chunked / "raw" / "bars.parquet").num_row_groups == 3
    assert pq.ParquetFile(chunked / "features" / "features.parquet").num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(one / "raw" / "bars.parquet"), pd.read_parquet(chunked / "raw" / "bars.parquet"), check_exact=True)
    assert_same_rows(pd.read_parquet(one / "features" / "features.parquet"), pd.read_parquet(chunked / "features" / "features.parquet"))
    assert json.loads((one / "features" / "schema.json").read_text()) == json.loads((chunked / "features" / "schema.json").read_text())
    assert_same_folds(json.loads((one / "features" / "folds.json").read_text()), json.loads((chunked / "features" / "folds.json").read_text()))


def test_the_stage_writes_what_build_features_returns(pipelines):
    one, _ = pipelines
    bars = pd.read_parquet(one / "raw" / "bars.parquet")
    result = build_features(bars, pd.read_parquet(one / "raw" / "context.parquet"), make_params(1000))
    pd.testing.assert_frame_equal(pd.read_parquet(one / "features" / "features.parquet"), result.frame, check_exact=True)
    assert json.loads(json.dumps(result.schema)) == json.loads((one / "features" / "schema.json").read_text())


def test_the_window_store_of_chunked_features_is_the_same(pipelines):
    one, chunked = pipelines
    a, b = one / "windows", chunked / "windows"
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for path in sorted(a.glob("*.npy")):
        x, y = np.load(path), np.load(b / path.name)
        if path.name == "features.npy":
            np.testing.assert_allclose(x, y, rtol=FEATURE_RTOL, atol=FEATURE_ATOL)
        else:
            np.testing.assert_array_equal(x, y, err_msg=path.name)
    ma, mb = (json.loads((d / "meta.json").read_text()) for d in (a, b))
    for fa, fb in zip(ma.pop("folds"), mb.pop("folds")):
        np.testing.assert_allclose(np.array(list(fa.pop("scaler").values())), np.array(list(fb.pop("scaler").values())), rtol=SCALER_RTOL)
        assert fa == fb
    assert ma == mb
