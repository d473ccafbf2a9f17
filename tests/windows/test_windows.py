"""Window store: writer, reader, Dataset and BatchGatherer against a naive pandas reference."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from trendfactory.errors import DataValidationError
from trendfactory.windows import store
from trendfactory.windows.reader import WindowSplit
from trendfactory.windows.torch_data import BatchGatherer, WindowDataset
from trendfactory.windows.store import MISSING_LABEL, build_split, valid_window_ends

SEQ_LEN = 5
HORIZONS = [1, 3]
FEATURES = ["stk_a", "stk_b", "ctx_c", "ctx_d"]
# lengths: one shorter than a window, one exactly a window, others longer
LENGTHS = {"AAA": 23, "BBB": 3, "CCC": 5, "DDD": 40, "EEE": 17}


def make_frame(seed: int = 0, tz: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for sym, n in LENGTHS.items():
        dt = pd.date_range("2020-01-01", periods=n, freq="D", tz=tz)
        d = {"symbol": sym, "datetime": dt}
        for j, c in enumerate(FEATURES):
            x = rng.normal(size=n).astype(np.float32)
            x[: min(n, j + 1)] = np.nan  # indicator warm-up (different per column)
            d[c] = x
        g = pd.DataFrame(d)
        if n > 12:  # a hole in the middle, and an inf
            g.loc[10, "stk_b"] = np.nan
        if n > 30:
            g.loc[25, "ctx_d"] = np.inf
        for h in HORIZONS:
            lab = pd.array(rng.integers(-1, 2, size=n), dtype="Int8")
            lab[n - h :] = pd.NA  # label span runs past the data
            if n > 8:
                lab[7] = pd.NA
            ret = rng.normal(scale=0.01, size=n)
            ret[n - h :] = np.nan
            if n > 15:
                ret[14] = np.nan  # label present but ret missing
            g[f"label_h{h}"] = lab
            g[f"ret_h{h}"] = ret
            g[f"score_h{h}"] = np.tanh(ret * 50)
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def built(tmp_path: Path, frame: pd.DataFrame, monkeypatch) -> tuple[WindowSplit, pd.DataFrame]:
    # tiny streamed batches (7 rows) so symbols and windows straddle batch boundaries
    monkeypatch.setattr(store, "_BATCH_BYTES", 1)
    monkeypatch.setattr(store, "_MIN_BATCH_ROWS", 7)
    pq_path = tmp_path / "train.parquet"
    frame.to_parquet(pq_path, index=False, row_group_size=11)
    build_split(pq_path, tmp_path / "windows" / "train", FEATURES, HORIZONS, SEQ_LEN)
    return WindowSplit.open(tmp_path / "windows" / "train"), frame


# ---- naive reference: per symbol, per window, pandas .iloc ----------------------------------


def reference_ends(df: pd.DataFrame, seq_len: int, horizon: int | None = None) -> list[int]:
    ends = []
    for _, g in df.groupby("symbol", sort=False):
        rows = g.index.to_numpy()  # global row numbers
        for p in range(seq_len - 1, len(g)):
            w = g.iloc[p - seq_len + 1 : p + 1]
            if not np.isfinite(w[FEATURES].to_numpy(dtype=np.float64)).all():
                continue
            if horizon is not None:
                last = g.iloc[p]
                if pd.isna(last[f"label_h{horizon}"]) or not np.isfinite(last[f"ret_h{horizon}"]):
                    continue
            ends.append(int(rows[p]))
    return ends


def reference_window(df: pd.DataFrame, e: int, seq_len: int) -> np.ndarray:
    w = df.iloc[e - seq_len + 1 : e + 1]
    assert w["symbol"].nunique() == 1
    return w[FEATURES].to_numpy(dtype=np.float32)


# ---- tests --------------------------------------------------------------------------------


def test_arrays_match_the_parquet(built):
    split, df = built
    np.testing.assert_array_equal(split.features, df[FEATURES].to_numpy(dtype=np.float32))
    assert isinstance(split.features, np.memmap) and not split.features.flags.writeable
    assert split.symbol_names == list(LENGTHS)
    assert list(split.symbols) == df["symbol"].tolist()
    assert (split.datetimes == pd.DatetimeIndex(df["datetime"])).all()
    for h in HORIZONS:
        lab = df[f"label_h{h}"]
        expect = lab.fillna(MISSING_LABEL).to_numpy(dtype=np.int8)
        np.testing.assert_array_equal(split.labels(h), expect)
        assert split.labels(h).dtype == np.int8
        np.testing.assert_array_equal(split.returns(h), df[f"ret_h{h}"].to_numpy(np.float32))
        np.testing.assert_array_equal(split.scores(h), df[f"score_h{h}"].to_numpy(np.float32))
    counts = split.meta["counts"]
    assert counts["rows_per_symbol"] == LENGTHS
    assert counts["windows"] == split.index().size


def test_index_equals_reference_and_never_crosses_symbols(built):
    split, df = built
    ends = split.index()
    assert ends.dtype == np.int64
    assert ends.tolist() == reference_ends(df, SEQ_LEN)
    codes = np.asarray(split.symbol_codes)
    assert (codes[ends] == codes[ends - SEQ_LEN + 1]).all()
    # boundaries: BBB (3 rows) has no window; CCC (5 rows) has at most its last row
    sym = df["symbol"].to_numpy()
    assert "BBB" not in set(sym[ends])
    ccc = np.flatnonzero(sym == "CCC")
    assert set(ends) & set(ccc) <= {int(ccc[-1])}
    # the first window of AAA ends once every column's warm-up is over (4 NaN rows + 5)
    assert int(ends[0]) == 4 + SEQ_LEN - 1
    # NaN / inf rows are in no window
    bad = np.flatnonzero(~np.isfinite(df[FEATURES].to_numpy(np.float64)).all(axis=1))
    covered = (ends[:, None] + np.arange(-SEQ_LEN + 1, 1)).ravel()
    assert not set(bad) & set(covered)


@pytest.mark.parametrize("h", HORIZONS)
def test_horizon_index_excludes_missing_labels(built, h):
    split, df = built
    idx = split.index(h)
    assert idx.tolist() == reference_ends(df, SEQ_LEN, horizon=h)
    assert set(idx) <= set(split.index())
    assert (split.labels(h)[idx] != MISSING_LABEL).all()
    assert np.isfinite(split.returns(h)[idx]).all()
    # something was actually excluded for each reason
    assert len(idx) < len(split.index())


def test_windows_equal_reference(built):
    split, df = built
    ends = split.index()
    W = split.windows(ends)
    assert W.shape == (len(ends), SEQ_LEN, len(FEATURES)) and W.dtype == np.float32
    for k, e in enumerate(ends):
        np.testing.assert_array_equal(W[k], reference_window(df, int(e), SEQ_LEN))
    view = split.window_view()
    assert view.shape == (len(df) - SEQ_LEN + 1, SEQ_LEN, len(FEATURES))
    assert np.shares_memory(view, split.features)
    np.testing.assert_array_equal(view[ends - SEQ_LEN + 1], W)
    assert split.windows([]).shape == (0, SEQ_LEN, len(FEATURES))


def test_windows_reject_crossing_and_out_of_range(built):
    split, df = built
    first_ddd = int(np.flatnonzero(df["symbol"].to_numpy() == "DDD")[0])
    with pytest.raises(ValueError, match="crosses a symbol boundary"):
        split.windows([first_ddd + 1])
    with pytest.raises(IndexError, match="window ends must be in"):
        split.windows([SEQ_LEN - 2])
    with pytest.raises(IndexError, match="window ends must be in"):
        split.windows([len(df)])


def test_tabular_lags_equal_reference(built):
    split, df = built
    lags = (1, 4)
    X, y, meta = split.tabular(3, lags=lags)
    names = split.tabular_feature_names(lags)
    assert names[: len(FEATURES)] == FEATURES
    assert names[len(FEATURES) : 2 * len(FEATURES)] == [f"{c}_lag1" for c in FEATURES]
    assert "stk_a_lag4" in names and len(names) == X.shape[1] == 3 * len(FEATURES)
    ends = split.index(3)
    assert X.dtype == np.float32 and y.dtype == np.int8 and len(X) == len(y) == len(meta) == len(ends)
    for k, e in enumerate(ends):
        e = int(e)
        ref = np.concatenate([df.iloc[e][FEATURES].to_numpy(np.float32)] + [df.iloc[e - lag][FEATURES].to_numpy(np.float32) for lag in lags])
        assert df.iloc[e - max(lags)]["symbol"] == df.iloc[e]["symbol"]
        np.testing.assert_array_equal(X[k], ref)
        assert y[k] == df.iloc[e]["label_h3"]
    assert list(meta.columns) == ["symbol", "datetime", "ret", "score"]
    np.testing.assert_array_equal(meta["symbol"].astype(str), df["symbol"].to_numpy()[ends])
    assert (meta["datetime"].to_numpy() == df["datetime"].to_numpy()[ends]).all()
    np.testing.assert_array_equal(meta["ret"], df["ret_h3"].to_numpy(np.float32)[ends])
    np.testing.assert_array_equal(meta["score"], df["score_h3"].to_numpy(np.float32)[ends])
    X0, _, _ = split.tabular(3)
    np.testing.assert_array_equal(X0, X[:, : len(FEATURES)])


@pytest.mark.parametrize(
    ("lags", "match"),
    [((SEQ_LEN,), "outside the window"), ((0,), "outside the window"), ((-1,), "outside the window"), ((2, 2), "duplicates"), ((1.5,), "must be ints")],
)
def test_tabular_bad_lags(built, lags, match):
    split, _ = built
    with pytest.raises(ValueError, match=match):
        split.tabular(1, lags=lags)


def test_unknown_horizon_lists_available(built):
    split, _ = built
    with pytest.raises(KeyError, match=r"available: \[1, 3\]"):
        split.index(7)


def test_dataset_items_equal_windows(built):
    split, _ = built
    ds = WindowDataset(split, 1)
    ends = split.index(1)
    assert len(ds) == len(ends)
    W = split.windows(ends)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.dtype == torch.float32 and x.shape == (SEQ_LEN, len(FEATURES))
        np.testing.assert_array_equal(x.numpy(), W[i])
        assert y.dtype == torch.int64 and int(y) == int(split.labels(1)[ends[i]]) + 1
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
    np.testing.assert_array_equal(xb.numpy(), W[:8])


@pytest.mark.parametrize("shuffle", [False, True])
def test_gatherer_batches_equal_windows(built, shuffle):
    split, _ = built
    g = BatchGatherer(split, 3, batch_size=6, shuffle=shuffle, seed=1, with_ends=True)
    ends = split.index(3)
    seen = []
    batches = list(g)
    assert len(batches) == len(g) == -(-len(ends) // 6)
    for x, y, e in batches:
        assert x.dtype == torch.float32 and x.shape == (len(e), SEQ_LEN, len(FEATURES))
        assert y.dtype == torch.int64 and set(y.tolist()) <= {0, 1, 2}
        np.testing.assert_array_equal(x.numpy(), split.windows(e.numpy()))
        np.testing.assert_array_equal(y.numpy(), split.labels(3)[e.numpy()].astype(np.int64) + 1)
        seen += e.tolist()
    assert sorted(seen) == ends.tolist()  # every window exactly once
    assert (seen == ends.tolist()) == (not shuffle)


def test_gatherer_is_deterministic(built):
    split, _ = built

    def run(**kw):
        return [e.tolist() for _, _, e in BatchGatherer(split, 1, 4, seed=7, with_ends=True, **kw)]

    assert run() == run()
    g = BatchGatherer(split, 1, 4, seed=7, with_ends=True)
    ep0 = [e.tolist() for *_, e in g]
    ep1 = [e.tolist() for *_, e in g]  # next epoch: a different order
    assert ep0 == run() and ep1 != ep0
    g.set_epoch(1)
    assert [e.tolist() for *_, e in g] == ep1
    assert run() != [e.tolist() for _, _, e in BatchGatherer(split, 1, 4, seed=8, with_ends=True)]
    dl = BatchGatherer(split, 1, 4, drop_last=True)
    assert all(len(y) == 4 for _, y in dl) and len(dl) == len(split.index(1)) // 4


@pytest.mark.parametrize("resident", [False, True])
def test_an_iterator_never_read_draws_no_epoch(built, resident):
    """tqdm.auto calls iter() on what it wraps and never reads that iterator: the epoch's order
    is drawn at the first batch, so an unread iterator leaves the epochs' permutations alone."""
    split, _ = built

    def epochs(g):
        return [[e.tolist() for *_, e in g] for _ in range(2)]

    expected = epochs(BatchGatherer(split, 1, 4, seed=7, with_ends=True, resident=resident))
    g = BatchGatherer(split, 1, 4, seed=7, with_ends=True, resident=resident)
    iter(g)
    iter(g)
    assert g.epoch == 0 and epochs(g) == expected


def test_samples_per_epoch_draws_a_fresh_subset_each_epoch(built):
    """train.samples_per_epoch: each shuffled epoch takes a prefix of its own permutation, so
    epochs see different windows, deterministically; unshuffled (validation) passes see all."""
    split, _ = built
    n = len(split.index(1))
    cap = n // 3
    g = BatchGatherer(split, 1, 4, seed=7, with_ends=True, samples_per_epoch=cap)
    ep0, ep1 = ([e for *_, es in g for e in es.tolist()] for _ in range(2))
    assert len(ep0) == len(ep1) == cap and len(g) == -(-cap // 4)
    assert len(set(ep0)) == cap and set(ep0) != set(ep1) and set(ep0) <= set(split.index(1).tolist())
    full = [e for *_, es in BatchGatherer(split, 1, 4, seed=7, with_ends=True) for e in es.tolist()]
    assert ep0 == full[:cap]  # the same permutation as without a cap, cut
    assert len([1 for *_, es in BatchGatherer(split, 1, 4, shuffle=False, with_ends=True, samples_per_epoch=cap) for _ in es]) == n
    assert len(list(BatchGatherer(split, 1, 4, samples_per_epoch=10 * n))) == -(-n // 4)
    with pytest.raises(ValueError, match="samples_per_epoch"):
        BatchGatherer(split, 1, 4, samples_per_epoch=0)


def _epochs(g: BatchGatherer, n: int = 2) -> list[list[tuple[np.ndarray, ...]]]:
    return [[tuple(t.numpy().copy() for t in batch) for batch in g] for _ in range(n)]


@pytest.mark.parametrize(
    "kw",
    [
        dict(horizon=3, batch_size=6, shuffle=True, with_ends=True),
        dict(horizon=[1, 3], batch_size=5, shuffle=True, with_scores=True, with_ends=True, drop_last=True),
        dict(horizon=1, batch_size=4, shuffle=True, lags=(1, 3), with_scores=True, samples_per_epoch=17),
        dict(horizon=3, batch_size=7, shuffle=False, lags=(), with_ends=True),
    ],
    ids=["windows", "multi-horizon", "tabular-lags", "rows-unshuffled"],
)
def test_device_resident_batches_equal_the_host_gatherer_bit_for_bit(built, kw):
    """The device-resident path (features, targets and ends copied once, each batch gathered
    where the network runs) gives the same batches, byte for byte, in the same order, epoch
    after epoch, as the memory-mapped host path; forced here on the CPU."""
    split, _ = built
    if isinstance(kw["horizon"], list):
        kw = {**kw, "ends": np.intersect1d(split.index(1), split.index(3))}
    host = BatchGatherer(split, seed=5, **kw)
    resident = BatchGatherer(split, seed=5, resident=True, **kw)
    assert not host.resident and resident.resident and len(host) == len(resident)
    for ep_host, ep_res in zip(_epochs(host), _epochs(resident)):
        assert len(ep_host) == len(ep_res) > 0
        for a, b in zip(ep_host, ep_res):
            assert len(a) == len(b)
            for u, v in zip(a, b):
                assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()


def test_device_resident_features_are_copied_once_per_fold(built):
    """The gatherers of one fold (train and validation read one matrix) share one device copy;
    ``resident=None`` keeps the memory map on the CPU (nothing to gain there)."""
    from trendfactory.windows import torch_data

    split, _ = built
    a = BatchGatherer(split, 1, 4, resident=True)
    b = BatchGatherer(split, 3, 8, shuffle=False, resident=True)
    assert a._src.untyped_storage().data_ptr() == b._src.untyped_storage().data_ptr()
    assert not BatchGatherer(split, 1, 4).resident
    assert not torch_data.fits_on_device(split.features, torch.device("cpu"))


def test_pickle_reopens_memmap(built):
    split, _ = built
    clone = pickle.loads(pickle.dumps(split))
    assert isinstance(clone.features, np.memmap)
    np.testing.assert_array_equal(clone.index(1), split.index(1))
    assert len(pickle.dumps(split)) < 1000  # not the data


def test_categorical_symbols_and_tz_datetimes(tmp_path):
    df = make_frame(seed=3, tz="America/New_York")
    df["symbol"] = df["symbol"].astype("category")
    pq_path = tmp_path / "val.parquet"
    df.to_parquet(pq_path, index=False)
    build_split(pq_path, tmp_path / "val", FEATURES, HORIZONS, SEQ_LEN)
    split = WindowSplit.open(tmp_path / "val")
    assert list(split.symbols) == df["symbol"].astype(str).tolist()
    assert split.datetimes.equals(pd.DatetimeIndex(df["datetime"]))
    assert split.index().tolist() == reference_ends(df, SEQ_LEN)


def test_discovers_columns_only_when_not_given(tmp_path, frame):
    pq_path = tmp_path / "t.parquet"
    frame.assign(other=1.0).to_parquet(pq_path, index=False)
    meta = build_split(pq_path, tmp_path / "w", None, None, SEQ_LEN)
    assert meta["feature_names"] == FEATURES and meta["horizons"] == HORIZONS
    meta = build_split(pq_path, tmp_path / "w", ["ctx_c", "stk_a"], [3], SEQ_LEN)
    split = WindowSplit.open(tmp_path / "w")
    assert split.feature_names == ["ctx_c", "stk_a"] and split.horizons == [3]
    assert not (tmp_path / "w" / "label_h1.npy").exists()  # replaced, not merged


def test_valid_window_ends_small_cases():
    codes = np.array([0, 0, 0, 1, 1, 1, 1, 2], dtype=np.int32)
    ok = np.array([1, 1, 1, 1, 0, 1, 1, 1], dtype=bool)
    assert valid_window_ends(codes, ok, 2).tolist() == [1, 2, 6]
    assert valid_window_ends(codes, ok, 1).tolist() == [0, 1, 2, 3, 5, 6, 7]
    assert valid_window_ends(codes, ok, 3).tolist() == [2]
    assert valid_window_ends(codes[:0], ok[:0], 3).tolist() == []


# ---- failures leave nothing behind ----------------------------------------------------------


def _leftovers(parent: Path) -> list[str]:
    if not parent.exists():
        return []
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_missing_column_names_column_and_file(tmp_path, frame):
    pq_path = tmp_path / "train.parquet"
    frame.drop(columns=["ctx_c"]).to_parquet(pq_path, index=False)
    out = tmp_path / "windows" / "train"
    with pytest.raises(DataValidationError, match=r"train\.parquet: missing column 'ctx_c'"):
        build_split(pq_path, out, FEATURES, HORIZONS, SEQ_LEN)
    assert not out.exists()
    assert _leftovers(out.parent) == []


def test_failure_mid_write_leaves_no_dir_and_keeps_previous(tmp_path, frame, monkeypatch):
    pq_path = tmp_path / "train.parquet"
    frame.to_parquet(pq_path, index=False)
    out = tmp_path / "windows" / "train"

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "valid_window_ends", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_split(pq_path, out, FEATURES, HORIZONS, SEQ_LEN)
    assert not out.exists() and _leftovers(out.parent) == []

    monkeypatch.undo()
    build_split(pq_path, out, FEATURES, HORIZONS, SEQ_LEN)
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setattr(store, "valid_window_ends", boom)
    with pytest.raises(RuntimeError):
        build_split(pq_path, out, FEATURES, [1], SEQ_LEN)
    assert sorted(p.name for p in out.iterdir()) == before  # previous output untouched
    assert _leftovers(out.parent) == []


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: pd.concat([d.iloc[30:], d.iloc[:30]], ignore_index=True), "reappears at row"),
        (lambda d: d.assign(datetime=d["datetime"].where(d.index != 5, d["datetime"][4])), "non-increasing or duplicate datetime at row 5"),
        (lambda d: d.assign(label_h1=d["label_h1"].where(d.index != 2, 2)), "'label_h1' has value 2"),
        (lambda d: d.assign(stk_a=d["symbol"]), "'stk_a' has type"),
    ],
    ids=["non-contiguous-symbol", "duplicate-datetime", "bad-label", "non-numeric-feature"],
)
def test_bad_input_raises_and_writes_nothing(tmp_path, frame, mutate, match):
    pq_path = tmp_path / "bad.parquet"
    mutate(frame).to_parquet(pq_path, index=False)
    out = tmp_path / "out"
    with pytest.raises(DataValidationError, match=match):
        build_split(pq_path, out, FEATURES, HORIZONS, SEQ_LEN)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_gatherer_recycles_only_dropped_buffers(built):
    split, _ = built
    it = iter(BatchGatherer(split, 1, 4, shuffle=False, with_ends=True))
    x1, _, e1 = next(it)
    keep1 = x1.clone()
    p1 = x1.data_ptr()
    x2, _, e2 = next(it)  # x1 still held: a different buffer
    assert x2.data_ptr() != p1
    row = x2[0]  # a view keeps x2's buffer alive after x2 itself is dropped
    p2 = x2.data_ptr()
    del x1, x2
    x3, _, e3 = next(it)  # x1's buffer is free again
    assert x3.data_ptr() == p1
    x4, _, e4 = next(it)
    assert x4.data_ptr() not in (p1, p2)
    np.testing.assert_array_equal(row.numpy(), split.windows(e2.numpy())[0])
    np.testing.assert_array_equal(keep1.numpy(), split.windows(e1.numpy()))
    np.testing.assert_array_equal(x3.numpy(), split.windows(e3.numpy()))
    np.testing.assert_array_equal(x4.numpy(), split.windows(e4.numpy()))


@pytest.mark.parametrize(("rows", "seq_len"), [(0, SEQ_LEN), (None, 100)], ids=["no-rows", "seq-too-long"])
def test_no_windows_is_not_an_error(tmp_path, frame, rows, seq_len):
    pq_path = tmp_path / "s.parquet"
    (frame.iloc[:rows] if rows is not None else frame).to_parquet(pq_path, index=False)
    build_split(pq_path, tmp_path / "s", FEATURES, HORIZONS, seq_len)
    split = WindowSplit.open(tmp_path / "s")
    assert split.index().size == 0 and split.index(1).size == 0
    assert split.windows(split.index(1)).shape == (0, seq_len, len(FEATURES))
    assert split.window_view().shape[1:] == (seq_len, len(FEATURES))
    X, y, meta = split.tabular(1, lags=(1,))
    assert X.shape == (0, 2 * len(FEATURES)) and y.shape == (0,) and len(meta) == 0
    assert list(BatchGatherer(split, 1, 4)) == [] and len(WindowDataset(split, 1)) == 0


def test_seq_len_one_has_no_lags(tmp_path, frame):
    pq_path = tmp_path / "s.parquet"
    frame.to_parquet(pq_path, index=False)
    build_split(pq_path, tmp_path / "s", FEATURES, HORIZONS, 1)
    split = WindowSplit.open(tmp_path / "s")
    finite = np.isfinite(frame[FEATURES].to_numpy(np.float64)).all(axis=1)
    assert split.index().tolist() == np.flatnonzero(finite).tolist()
    with pytest.raises(ValueError, match="seq_len=1: none"):
        split.tabular(1, lags=(1,))


def test_integer_and_float64_feature_columns(tmp_path, frame):
    df = frame.copy()
    ints = pd.array(np.arange(len(df)) % 7, dtype="Int16")
    ints[3] = pd.NA  # a null in an integer column becomes NaN
    df["stk_a"] = ints
    df["ctx_c"] = df["ctx_c"].astype(np.float64)
    df.loc[30, "ctx_c"] = 1e300  # finite in float64, inf in float32: not a usable row
    pq_path = tmp_path / "t.parquet"
    df.to_parquet(pq_path, index=False)
    build_split(pq_path, tmp_path / "w", FEATURES, HORIZONS, SEQ_LEN)
    split = WindowSplit.open(tmp_path / "w")
    assert np.isnan(split.features[3, 0]) and split.features[4, 0] == 4
    assert np.isinf(split.features[30, 2])
    covered = (split.index()[:, None] + np.arange(-SEQ_LEN + 1, 1)).ravel()
    assert 30 not in set(covered) and 3 not in set(covered)


def test_a_large_fold_matrix_is_memory_mapped_not_held(tmp_path, monkeypatch):
    """Above reader.SPILL_BYTES a fold's scaled matrix goes to an unlinked temp file, mapped:
    the same numbers as in RAM, and no file left behind."""
    import tempfile

    from tests.pipeline_helpers import tiny_params, write_stores
    from trendfactory.windows import reader

    params = tiny_params(n_symbols=3, n_bars=700, split={"scheme": "walk_forward", "test_start": "2001-06-01", "fold": 1, "val_years": 1, "embargo": 5})
    store = write_stores(tmp_path / "project", params)
    in_ram = np.array(WindowSplit.open(store, fold=0, role="train").features)
    reader._SCALED.clear()
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setattr(reader, "SPILL_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    view = WindowSplit.open(store, fold=0, role="train")
    assert isinstance(view.features, np.memmap) and not view.features.flags.writeable
    np.testing.assert_array_equal(np.asarray(view.features), in_ram)
    assert list(spill_dir.iterdir()) == []
    reader._SCALED.clear()
