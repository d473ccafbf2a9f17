"""A user's own ragged universe through `dvc repro` up to the window store: dotted file names,
daily stamps with daylight-saving UTC offsets, a recent IPO too short for the warm-up, a date
only one symbol trades -- and an unadjusted split that `data.on_jump: error` refuses in one
line, leaving nothing recorded in dvc.lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipeline_helpers import copy_project, merge
from trendfactory.data.synthetic import generate_bars
from trendfactory.params import SyntheticConfig
from trendfactory.windows.reader import WindowSplit

ROOT = Path(__file__).resolve().parents[2]

PARAMS = {
    "data": {"source": "csv", "start": None, "end": None, "timezone": "America/New_York"},
    "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
    "split": {"scheme": "walk_forward", "test_start": "2002-01-01", "fold": 1, "val_years": 1, "embargo": 5},
    "window": {"seq_len": 8},
    "label": {"horizons": [5]},
    "run": {"models": ["majority"], "neural_models": [], "joint_models": []},
    "parallel": {"cpus": 1},  # fits in the stage's process: no Ray start-up for two tiny fits
}


def ragged_universe(root: Path) -> Path:
    """prices/: BRK.A.csv, BRK.B.csv, VOD.L.csv (New York midnight stamps with -05:00/-04:00
    offsets), IPO.csv (60 bars: shorter than the warm-up), and one extra VOD.L bar on a Saturday
    that no other symbol trades."""
    bars = generate_bars(SyntheticConfig(n_symbols=4, n_bars=900, start="2000-01-03", ohlcv=False), seed=3)
    prices = root / "prices"
    prices.mkdir(parents=True)
    for (sym, part), name in zip(bars.groupby("symbol"), ["BRK.A", "BRK.B", "VOD.L", "IPO"]):
        frame = part.drop(columns="symbol").rename(columns={"datetime": "Date", "close": "Close"}).reset_index(drop=True)
        if name == "VOD.L":
            extra = pd.DataFrame({"Date": [pd.Timestamp("2001-06-16")], "Close": [frame["Close"].iloc[-1]]})
            frame = pd.concat([frame, extra]).sort_values("Date", kind="stable").reset_index(drop=True)
            frame["Date"] = frame["Date"].dt.tz_localize("America/New_York").map(lambda t: t.isoformat(sep=" "))
        else:
            frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
        if name == "IPO":
            frame = frame.tail(60)
        frame.to_csv(prices / f"{name}.csv", index=False)
    return prices


def _project(root: Path, prices: Path) -> tuple[Path, dict]:
    work = root / "project"
    env = copy_project(work, merge(PARAMS, {"data": {"path": str(prices)}}))
    return work, env


def _repro(work: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", "repro", "window"], cwd=work, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def ragged(tmp_path_factory):
    root = tmp_path_factory.mktemp("ragged")
    prices = ragged_universe(root)
    work, env = _project(root, prices)
    return work, env, prices, _repro(work, env)


def test_ragged_universe_runs_with_the_documented_policies(ragged):
    work, _, prices, run = ragged
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"IPO ({prices / 'IPO.csv'})" in run.stderr or str(prices / "IPO.csv") in run.stderr  # dropped, file named
    manifest = json.loads((work / "data/raw/manifest.json").read_text())
    assert sorted(manifest["dropped_symbols"]) == ["IPO"]
    store = WindowSplit.open(work / "data/windows")
    assert sorted(store.symbol_names) == ["BRK.A", "BRK.B", "VOD.L"]  # dotted names kept, IPO left out
    bars = pd.read_parquet(work / "data/raw/bars.parquet")
    vod = bars[bars["symbol"] == "VOD.L"]["datetime"]
    assert vod.dt.tz is None and (vod.dt.hour == 0).all()  # offsets converted to New York midnight, stored naive
    assert pd.Timestamp("2001-06-16") in set(vod)  # the lone Saturday bar is kept ...
    feats = pd.read_parquet(work / "data/features/features.parquet", columns=["symbol", "datetime", "ctx_dispersion_5"])
    lone = feats[(feats["datetime"] == pd.Timestamp("2001-06-16"))]
    assert len(lone) == 1 and lone["ctx_dispersion_5"].iloc[0] == 0.0  # ... with its dispersion defined


def test_an_unadjusted_split_with_on_jump_error_stops_in_one_line_and_records_nothing(ragged, tmp_path):
    work, env, prices, _ = ragged
    lock_before = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    brk = pd.read_csv(prices / "BRK.B.csv")
    brk.loc[brk.index >= 500, "Close"] /= 10  # a 1:10 split, prices not adjusted
    brk.to_csv(prices / "BRK.B.csv", index=False)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"]["on_jump"] = "error"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = _repro(work, env)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert len(errors) == 1 and "BRK.B" in errors[0] and str(prices / "BRK.B.csv") in errors[0], errors
    lock_after = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    for stage in ("ingest", "featurize", "window"):  # (check_params passed: the new params are valid)
        assert lock_after[stage] == lock_before[stage], stage
