"""The window store is written a batch of rows at a time: its files do not depend on the batch
or block sizes, a batch's rows are all that is ever mapped, and an order error found across a
batch boundary names the file's row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendfactory.errors import DataValidationError
from trendfactory.windows import npyfile, store
from trendfactory.windows.store import build_split

FEATURES = [f"stk_{i}" for i in range(6)] + ["ctx_a", "ctx_b"]
HORIZONS = [1, 4]
SEQ_LEN = 6


def make_frame(n_symbols: int = 40, n_bars: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_symbols * n_bars
    pos = np.tile(np.arange(n_bars), n_symbols)
    cols = {
        "symbol": np.repeat([f"S{i:03d}" for i in range(n_symbols)], n_bars),
        "datetime": np.tile(pd.date_range("2010-01-01", periods=n_bars, freq="D").to_numpy(), n_symbols),
    }
    X = rng.standard_normal((n, len(FEATURES))).astype(np.float32)
    X[pos < 3] = np.nan  # warm-up
    X[rng.random(n) < 0.01, 2] = np.nan  # holes
    for j, c in enumerate(FEATURES):
        cols[c] = X[:, j]
    for h in HORIZONS:
        lab = pd.array(rng.integers(-1, 2, size=n), dtype="Int8")
        lab[pos >= n_bars - h] = pd.NA
        ret = rng.normal(scale=0.01, size=n)
        ret[pos >= n_bars - h] = np.nan
        cols[f"label_h{h}"], cols[f"ret_h{h}"], cols[f"score_h{h}"] = lab, ret, np.tanh(ret * 50)
    for k in range(2):
        cols[f"fold_{k:02d}"] = rng.integers(0, 4, size=n).astype(np.int8)
    return pd.DataFrame(cols)


FOLDS = [{"index": k, "clip": 5.0, "scaler": {c: {"kind": "zscore", "mean": 0.0, "std": 1.0} for c in FEATURES}} for k in range(2)]


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_batch_and_block_sizes_do_not_change_a_byte(tmp_path, monkeypatch):
    path = tmp_path / "f.parquet"
    make_frame().to_parquet(path, index=False, row_group_size=1000)
    build_split(path, tmp_path / "big", FEATURES, HORIZONS, SEQ_LEN, folds=FOLDS)
    # batches of 97 rows and index blocks of 5 (< seq_len) rows: every window straddles a block edge somewhere
    monkeypatch.setattr(store, "_BATCH_BYTES", 1)
    monkeypatch.setattr(store, "_MIN_BATCH_ROWS", 97)
    monkeypatch.setattr(store, "_INDEX_BLOCK_ROWS", 5)
    build_split(path, tmp_path / "small", FEATURES, HORIZONS, SEQ_LEN, folds=FOLDS)
    assert files(tmp_path / "big") == files(tmp_path / "small")


def test_only_a_batch_of_rows_is_ever_mapped(tmp_path, monkeypatch):
    frame = make_frame(n_symbols=100, n_bars=600)  # 60,000 rows x 8 features: a 1.9 MB matrix
    path = tmp_path / "f.parquet"
    frame.to_parquet(path, index=False)
    monkeypatch.setattr(store, "_BATCH_BYTES", 1)
    monkeypatch.setattr(store, "_MIN_BATCH_ROWS", 4096)
    monkeypatch.setattr(store, "_INDEX_BLOCK_ROWS", 4096)
    mapped: list[int] = []
    block = npyfile.NpyFile.block

    def recording(self, start, stop, writable=False):
        mapped.append((stop - start) * self._row_bytes)
        return block(self, start, stop, writable)

    monkeypatch.setattr(npyfile.NpyFile, "block", recording)
    build_split(path, tmp_path / "w", FEATURES, HORIZONS, SEQ_LEN, folds=FOLDS)
    matrix = len(frame) * len(FEATURES) * 4
    assert max(mapped) <= 4096 * len(FEATURES) * 4 < matrix / 10  # one batch of the matrix, or one block of an index array


def test_a_symbol_reappearing_in_a_later_batch_names_its_row(tmp_path, monkeypatch):
    frame = make_frame(n_symbols=5, n_bars=50)
    frame = pd.concat([frame.iloc[:120], frame.iloc[150:], frame.iloc[120:150]], ignore_index=True)  # S002's tail moved last
    path = tmp_path / "f.parquet"
    frame.to_parquet(path, index=False)
    monkeypatch.setattr(store, "_BATCH_BYTES", 1)
    monkeypatch.setattr(store, "_MIN_BATCH_ROWS", 16)
    with pytest.raises(DataValidationError, match=r"symbol 'S002' reappears at row 220 after other symbols"):
        build_split(path, tmp_path / "w", FEATURES, HORIZONS, SEQ_LEN)
    assert not (tmp_path / "w").exists()
