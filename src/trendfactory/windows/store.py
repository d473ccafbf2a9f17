"""Window store writer: one featurized split (parquet) -> model-ready memory-mappable arrays.

Layout of one split directory (all arrays are plain ``.npy`` files, openable with
``np.load(path, mmap_mode="r")``; N rows, F features, L = seq_len)::

    features.npy       float32 [N, F]   feature matrix, row order = parquet order
    symbol_codes.npy   int32   [N]      code into meta["symbols"]
    datetime.npy       int64   [N]      ns since epoch (UTC when the source is tz-aware)
    label_h{h}.npy     int8    [N]      -1/0/+1, MISSING_LABEL (-128) where missing
    ret_h{h}.npy       float32 [N]      forward return, NaN where missing
    score_h{h}.npy     float32 [N]      score in [-1, 1], NaN where missing
    index.npy          int64   [W]      valid window END rows e (ascending)
    index_h{h}.npy     int64   [W_h]    ends of `index` whose label_h is present and ret_h finite
    roles.npy          int8    [N, K]   (walk-forward stores) row's role in fold k: 0 none
                                        (outside, purged, embargoed), 1 train, 2 val, 3 test
    meta.json                           names, shapes, symbols, counts; how the labels were made
                                        ("label": entry_lag, barrier_k, vol_span); per fold its
                                        boundaries and train-fitted scaler ("folds")

A store written with ``folds`` holds the features *unscaled*, once: a reader opens one fold's
train, val or test view, which scales the rows with that fold's own scaler (fitted on that
fold's train rows) and keeps only window ends of that role (``WindowSplit.open(dir, fold, role)``).
A store written without ``folds`` holds features as given (already scaled).

A window ending at row e is rows e-L+1 .. e (inclusive). It is valid when all those rows belong
to the same symbol and all their features are finite (leakage rule 6: a window never crosses
symbols and never reaches past its end row).

Every array is filled streaming from the parquet (``iter_batches``), each batch through a
mapping of just its rows (:class:`~trendfactory.windows.npyfile.NpyFile`), and the window index
is built block by block: resident memory holds a batch or a block, one byte per row (which rows
have finite features) and the per-symbol counts -- not the feature matrix, which the kernel's
page cache takes. The parquet is never loaded whole.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trendfactory.errors import DataValidationError
from trendfactory.io import make_temp_dir, remove_stale_temps
from trendfactory.windows.npyfile import NpyFile

__all__ = [
    "FORMAT_VERSION",
    "MISSING_LABEL",
    "build_split",
    "valid_window_ends",
]

FORMAT_VERSION = 1
MISSING_LABEL = -128  # int8 sentinel for a missing label (labels are -1/0/+1 otherwise)

SYMBOL_COL = "symbol"
DATETIME_COL = "datetime"
FEATURE_PREFIXES = ("stk_", "ctx_")

# Rows per streamed batch: ~4 MiB of float32 features (all F columns) per batch, clamped.
_BATCH_BYTES = 4 << 20
_MIN_BATCH_ROWS = 4096
_MAX_BATCH_ROWS = 1 << 18
# Read column chunks through a buffered stream instead of whole (a 1M-row row group of 64
# float32 columns would otherwise be read into memory in one piece: +256 MB).
_READ_BUFFER = 1 << 20
# Feature columns read per pass over the file (bounds pyarrow's per-column reader memory).
_COLUMNS_PER_PASS = 8
_USE_THREADS = False  # 2-core machines: decoding in the calling thread is as fast, leaner
# Rows per block when the window index is built from the written arrays (a few int64 arrays of
# this many rows are alive at once).
_INDEX_BLOCK_ROWS = 1 << 18


def _label_col(h: int) -> str:
    return f"label_h{h}"


def _ret_col(h: int) -> str:
    return f"ret_h{h}"


def _score_col(h: int) -> str:
    return f"score_h{h}"


# --------------------------------------------------------------------------------------------
# window index (vectorised)
# --------------------------------------------------------------------------------------------


def valid_window_ends(symbol_codes: np.ndarray, row_ok: np.ndarray, seq_len: int) -> np.ndarray:
    """End rows e such that rows e-seq_len+1..e share one symbol and all have ``row_ok``.

    Vectorised: a run of usable rows starts at row i when i is the first row, the symbol
    changes at i, or row i-1 is not ok. ``np.maximum.accumulate`` over those start positions
    gives each row the start of its run, so the run length is ``i - start + 1``.
    Returns int64 ends, ascending.
    """
    codes = np.asarray(symbol_codes)
    ok = np.asarray(row_ok, dtype=bool)
    n = codes.shape[0]
    if ok.shape != (n,):
        raise ValueError(f"row_ok has shape {ok.shape}, expected ({n},)")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    pos = np.arange(n, dtype=np.int64)
    run_start = np.empty(n, dtype=bool)
    run_start[0] = True
    np.not_equal(codes[1:], codes[:-1], out=run_start[1:])
    run_start[1:] |= ~ok[:-1]
    start = np.where(run_start, pos, 0)
    del run_start
    np.maximum.accumulate(start, out=start)  # start row of each row's run
    np.subtract(pos, start, out=start)  # run length - 1
    del pos
    keep = start >= seq_len - 1
    keep &= ok
    return np.flatnonzero(keep).astype(np.int64, copy=False)


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _discover_features(names: Sequence[str]) -> list[str]:
    return [c for c in names if c.startswith(FEATURE_PREFIXES)]


def _discover_horizons(names: Sequence[str]) -> list[int]:
    hs = []
    for c in names:
        if c.startswith("label_h") and c[len("label_h") :].isdigit():
            hs.append(int(c[len("label_h") :]))
    return sorted(hs)


def _check_schema(path: Path, schema: pa.Schema, features: list[str], horizons: list[int]) -> None:
    names = set(schema.names)
    required = [SYMBOL_COL, DATETIME_COL, *features]
    for h in horizons:
        required += [_label_col(h), _ret_col(h), _score_col(h)]
    for col in required:
        if col not in names:
            raise DataValidationError(f"{path}: missing column {col!r} (needed by the window stage); rerun featurize or fix the feature list / horizons passed to build_split")

    def numeric(t: pa.DataType) -> bool:
        return pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)

    for col in features + [c for h in horizons for c in (_label_col(h), _ret_col(h), _score_col(h))]:
        t = schema.field(col).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not numeric(t):
            raise DataValidationError(f"{path}: column {col!r} has type {t}, expected a numeric column")
    t = schema.field(DATETIME_COL).type
    if not pa.types.is_timestamp(t):
        raise DataValidationError(f"{path}: column {DATETIME_COL!r} has type {t}, expected a timestamp")
    t = schema.field(SYMBOL_COL).type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise DataValidationError(f"{path}: column {SYMBOL_COL!r} has type {t}, expected strings")


def _np(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow column -> numpy; integer / boolean columns become float64 so nulls become NaN."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
        col = col.cast(pa.float64())
    return col.to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` dir to ``final``, replacing any previous ``final``."""
    if final.exists() or final.is_symlink():
        old = make_temp_dir(final, "old")  # a kill before the rmtree below leaves it for remove_stale_temps
        os.rmdir(old)
        os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(old, final)  # put the previous output back
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, final)


def build_split(
    parquet_path: Path,
    out_dir: Path,
    feature_columns: Sequence[str] | None,
    horizons: Sequence[int] | None,
    seq_len: int,
    scaler: dict[str, dict] | None = None,
    folds: Sequence[dict] | None = None,
    label: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the window store of one split (see module docstring) and return its meta dict.

    The directory is built in a temp dir next to ``out_dir`` and renamed over it at the end,
    so a failure never leaves a partial ``out_dir`` (a previous one stays as it was).
    ``feature_columns`` / ``horizons`` come from ``schema.json``; only when ``None`` are they
    discovered from the parquet (``stk_*``/``ctx_*`` columns, ``label_h{h}`` columns).
    ``scaler`` (a pre-scaled store's scaler) goes into meta.json, so readers can map a scaled
    feature back to its original units (``WindowSplit.unscale``). ``folds`` (featurize's
    ``folds.json``: per fold its boundaries and ``scaler``) marks an unscaled walk-forward store:
    the parquet's ``fold_XX`` role columns go to ``roles.npy``. ``label`` (schema.json's
    ``entry_lag``, ``barrier_k``, ``vol_span``) goes into meta.json: how the labels were made.
    """
    parquet_path = Path(parquet_path)
    out_dir = Path(out_dir)
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be an int >= 1, got {seq_len!r}")
    seq_len = int(seq_len)
    if not parquet_path.is_file():
        raise DataValidationError(f"{parquet_path}: file not found; run the featurize stage first")

    pf = pq.ParquetFile(parquet_path, buffer_size=_READ_BUFFER, pre_buffer=False)
    schema = pf.schema_arrow
    features = list(feature_columns) if feature_columns is not None else _discover_features(schema.names)
    hs = [int(h) for h in horizons] if horizons is not None else _discover_horizons(schema.names)
    if not features:
        raise DataValidationError(f"{parquet_path}: no feature columns (stk_*/ctx_*) to window")
    dup = sorted({c for c in features if features.count(c) > 1})
    if dup:
        raise ValueError(f"feature_columns has duplicates: {dup}")
    if len(set(hs)) != len(hs) or any(h < 1 for h in hs):
        raise ValueError(f"horizons must be distinct positive ints, got {hs}")
    _check_schema(parquet_path, schema, features, hs)

    n = pf.metadata.num_rows
    f = len(features)
    tz = schema.field(DATETIME_COL).type.tz
    fold_cols = _fold_columns(parquet_path, schema, folds)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)  # what killed runs left behind
    tmp = make_temp_dir(out_dir)
    try:
        meta = _write(pf, parquet_path, tmp, features, hs, seq_len, n, f, tz, scaler, fold_cols, label)
        if folds is not None:
            meta = _add_folds(parquet_path, tmp, meta, folds, features)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _fold_columns(path: Path, schema: pa.Schema, folds: Sequence[dict] | None) -> list[str] | None:
    """The parquet's fold_XX role columns for ``folds`` (None without folds: no roles.npy)."""
    if folds is None:
        return None
    from trendfactory.features.splits import fold_name  # light module; no cycle at import time

    names = [fold_name(k) for k in range(len(folds))]
    missing = [c for c in names if c not in schema.names]
    if missing:
        raise DataValidationError(f"{path}: missing fold role column(s) {missing}; rerun featurize")
    return names


class _OrderCheck:
    """Each symbol's rows contiguous and datetimes strictly increasing within a symbol, checked
    batch by batch (the previous batch's last row carried over)."""

    def __init__(self, path: Path, symbols: list[str]) -> None:
        self.path, self.symbols = path, symbols
        self.last: tuple[int, int] | None = None  # (code, datetime) of the last row seen

    def add(self, start: int, codes: np.ndarray, dts: np.ndarray) -> None:
        if codes.shape[0] == 0:
            return
        if self.last is not None:
            codes = np.concatenate([[self.last[0]], codes])
            dts = np.concatenate([[self.last[1]], dts])
            start -= 1
        self.last = (int(codes[-1]), int(dts[-1]))
        _check_order(self.path, codes, dts, self.symbols, start)


class _Source:
    """The featurize output read batch by batch: a few columns at a time, row counts checked
    against the parquet metadata."""

    def __init__(self, pf: pq.ParquetFile, path: Path, n: int, f: int) -> None:
        self.pf, self.path, self.n = pf, path, n
        self.batch_size = max(_MIN_BATCH_ROWS, min(_MAX_BATCH_ROWS, _BATCH_BYTES // (4 * f)))

    def batches(self, columns: list[str]):
        """(row slice, record batch) over the whole file, for ``columns``."""
        off = 0
        for batch in self.pf.iter_batches(batch_size=self.batch_size, columns=columns, use_threads=_USE_THREADS):
            m = batch.num_rows
            if off + m > self.n:
                raise DataValidationError(f"{self.path}: more rows than the parquet metadata says ({self.n})")
            yield slice(off, off + m), batch
            off += m
        if off != self.n:
            raise DataValidationError(f"{self.path}: read {off} rows, the parquet metadata says {self.n}")


def _write(
    pf: pq.ParquetFile,
    path: Path,
    tmp: Path,
    features: list[str],
    hs: list[int],
    seq_len: int,
    n: int,
    f: int,
    tz: str | None,
    scaler: dict[str, dict] | None,
    fold_cols: list[str] | None,
    label: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The store's files in ``tmp``: the per-row columns, the features, the window index, meta.json."""
    src = _Source(pf, path, n, f)
    symbols, roles = _write_row_columns(src, tmp, hs, tz, fold_cols)
    pa.default_memory_pool().release_unused()  # hand the reader's freed buffers back to the OS
    row_ok = _write_features(src, tmp, features)
    counts = _write_index(tmp, n, seq_len, row_ok, hs, symbols, roles)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "source": path.name,  # not the full path: outputs stay byte-identical across checkouts
        "feature_names": features,
        "horizons": hs,
        "seq_len": seq_len,
        "n_rows": n,
        "n_features": f,
        "symbols": symbols,
        "datetime_tz": tz,
        "missing_label": MISSING_LABEL,
        "counts": counts,
        # feature -> [mean, std] of the train-fitted z-score (identity columns: [0, 1])
        "scaler": {c: [float(scaler[c]["mean"]), float(scaler[c]["std"])] for c in features if c in scaler} if scaler else {},
    }
    if label is not None:  # the triple barrier of the label columns (features/labels.py)
        meta["label"] = {"entry_lag": int(label["entry_lag"]), "barrier_k": float(label["barrier_k"]), "vol_span": int(label["vol_span"])}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _write_row_columns(src: _Source, tmp: Path, hs: list[int], tz: str | None, fold_cols: list[str] | None) -> tuple[list[str], NpyFile | None]:
    """Pass 1: symbol codes, datetimes, labels / returns / scores per horizon and the fold roles,
    with the row order checked; returns the symbols (by first appearance) and roles.npy."""
    n, per_h = src.n, {}
    codes = NpyFile.create(tmp / "symbol_codes.npy", np.int32, (n,))
    dts = NpyFile.create(tmp / "datetime.npy", np.int64, (n,))
    for h in hs:
        per_h[h] = (NpyFile.create(tmp / f"label_h{h}.npy", np.int8, (n,)), NpyFile.create(tmp / f"ret_h{h}.npy", np.float32, (n,)), NpyFile.create(tmp / f"score_h{h}.npy", np.float32, (n,)))
    roles = None if fold_cols is None else NpyFile.create(tmp / "roles.npy", np.int8, (n, len(fold_cols)))
    symbols: list[str] = []
    sym_code: dict[str, int] = {}
    order = _OrderCheck(src.path, symbols)
    meta_cols = [SYMBOL_COL, DATETIME_COL]
    for h in hs:
        meta_cols += [_label_col(h), _ret_col(h), _score_col(h)]
    for sl, batch in src.batches(meta_cols + (fold_cols or [])):
        batch_codes = _symbol_codes(src.path, batch, sl, symbols, sym_code)
        codes.write(sl.start, batch_codes)
        dt = batch.column(DATETIME_COL)  # -> int64 ns
        if dt.null_count:
            bad = int(np.flatnonzero(dt.is_null().to_numpy(zero_copy_only=False))[0]) + sl.start
            raise DataValidationError(f"{src.path}: null {DATETIME_COL!r} at row {bad}; fix the featurize output")
        batch_dts = dt.cast(pa.timestamp("ns", tz=tz)).cast(pa.int64()).to_numpy()
        dts.write(sl.start, batch_dts)
        order.add(sl.start, batch_codes, batch_dts)
        for h in hs:
            labels, rets, scores = per_h[h]
            labels.write(sl.start, _labels(src.path, batch, h))
            rets.write(sl.start, _np(batch.column(_ret_col(h))))
            scores.write(sl.start, _np(batch.column(_score_col(h))))
        if fold_cols:
            roles.write(sl.start, np.stack([_np(batch.column(c)).astype(np.int8) for c in fold_cols], axis=1))
        del batch
    return symbols, roles


def _symbol_codes(path: Path, batch: pa.RecordBatch, sl: slice, symbols: list[str], sym_code: dict[str, int]) -> np.ndarray:
    """The batch's symbols as int32 codes, new symbols numbered in order of first appearance
    (``symbols`` and ``sym_code`` grow)."""
    sym = batch.column(SYMBOL_COL)
    if sym.null_count:
        bad = int(np.flatnonzero(sym.is_null().to_numpy(zero_copy_only=False))[0]) + sl.start
        raise DataValidationError(f"{path}: null {SYMBOL_COL!r} at row {bad}; fix the featurize output")
    enc = sym if pa.types.is_dictionary(sym.type) else sym.dictionary_encode()
    idx = enc.indices.to_numpy(zero_copy_only=False)
    dict_names = enc.dictionary.to_pylist()
    lut = np.full(len(dict_names), -1, dtype=np.int32)
    used, first = np.unique(idx, return_index=True)
    for k in used[np.argsort(first)]:  # dictionary entries used here, by first appearance
        s = dict_names[k]
        c = sym_code.get(s)
        if c is None:
            c = sym_code[s] = len(symbols)
            symbols.append(s)
        lut[k] = c
    return lut[idx]


def _labels(path: Path, batch: pa.RecordBatch, h: int) -> np.ndarray:
    """The batch's labels at horizon ``h`` as int8, null -> MISSING_LABEL; anything but -1/0/+1 refused."""
    lab = _np(batch.column(_label_col(h))).astype(np.float64, copy=False)  # null -> NaN
    miss = np.isnan(lab)
    vals = lab[~miss]
    if vals.size and not np.isin(vals, (-1.0, 0.0, 1.0)).all():
        bad_v = float(vals[~np.isin(vals, (-1.0, 0.0, 1.0))][0])
        raise DataValidationError(f"{path}: column {_label_col(h)!r} has value {bad_v:g}; labels must be -1, 0, +1 or null")
    return np.where(miss, MISSING_LABEL, np.nan_to_num(lab)).astype(np.int8)


def _write_features(src: _Source, tmp: Path, features: list[str]) -> np.ndarray:
    """Passes 2..: features.npy [n, F] float32, a few columns per pass; returns which rows have
    every feature finite.

    pyarrow holds a reader (page buffers, decoded dictionary: a few MB) per open column, so
    reading all F columns at once would cost F times that; a group of columns bounds it.
    Columns are cast to float32 (nulls -> NaN) into a small cache-resident [rows, group] block,
    which is then copied into the batch's rows of the file in one strided assignment."""
    n, f = src.n, len(features)
    X = NpyFile.create(tmp / "features.npy", np.float32, (n, f))
    _reserve(tmp / "features.npy")
    row_ok = np.ones(n, dtype=bool)  # all features finite: one byte per row stays in memory
    block = np.empty((src.batch_size, min(f, _COLUMNS_PER_PASS)), dtype=np.float32)
    pool = pa.default_memory_pool()
    for g0 in range(0, f, _COLUMNS_PER_PASS):
        group = features[g0 : g0 + _COLUMNS_PER_PASS]
        for sl, batch in src.batches(group):
            blk = block[: batch.num_rows, : len(group)]
            ok = row_ok[sl]
            for j, name in enumerate(group):
                with np.errstate(over="ignore"):  # beyond float32 -> inf: an unusable row
                    blk[:, j] = _np(batch.column(name))
                ok &= np.isfinite(blk[:, j])  # after the cast
            rows = X.block(sl.start, sl.stop, writable=True)
            rows[:, g0 : g0 + len(group)] = blk
            del rows, batch  # unmapped: the written pages leave this process
        pool.release_unused()
    return row_ok


def _blocks(n: int, size: int):
    for a in range(0, n, size):
        yield a, min(n, a + size)


def _write_index(tmp: Path, n: int, seq_len: int, row_ok: np.ndarray, hs: list[int], symbols: list[str], roles: NpyFile | None) -> dict[str, Any]:
    """index.npy, index_h{h}.npy and the counts of meta.json, a block of rows at a time.

    A window ending at row e reads rows e-seq_len+1 .. e, so each block's ends are found from
    its rows plus the seq_len-1 rows before it. The first sweep counts the ends (the files'
    lengths), the second writes them."""
    codes = NpyFile.open(tmp / "symbol_codes.npy")
    labels = {h: NpyFile.open(tmp / f"label_h{h}.npy") for h in hs}
    rets = {h: NpyFile.open(tmp / f"ret_h{h}.npy") for h in hs}
    S = len(symbols)

    def sweep():
        """Per block: its first row, its symbol codes, its window ends, and per horizon the
        ends whose label is present and return finite."""
        for a, b in _blocks(n, _INDEX_BLOCK_ROWS):
            lo = max(0, a - (seq_len - 1))
            block_codes = codes.read(lo, b)
            ends = valid_window_ends(block_codes, row_ok[lo:b], seq_len) + lo
            ends = ends[ends >= a]
            per_h = {}
            for h in hs:
                lab_e, ret_e = labels[h].read(a, b)[ends - a], rets[h].read(a, b)[ends - a]
                keep = (lab_e != MISSING_LABEL) & np.isfinite(ret_e)
                per_h[h] = (ends[keep], lab_e[keep])
            yield a, block_codes[a - lo :], ends, per_h

    n_ends, n_h = 0, {h: 0 for h in hs}
    rows_per_symbol = np.zeros(S, dtype=np.int64)
    windows_per_symbol = np.zeros(S, dtype=np.int64)
    classes = {h: np.zeros(3, dtype=np.int64) for h in hs}
    for a, block_codes, ends, per_h in sweep():
        n_ends += ends.size
        rows_per_symbol += np.bincount(block_codes, minlength=S)
        windows_per_symbol += np.bincount(block_codes[ends - a], minlength=S)
        for h, (idx_h, lab_k) in per_h.items():
            n_h[h] += idx_h.size
            classes[h] += [int((lab_k == v).sum()) for v in (-1, 0, 1)]

    index = NpyFile.create(tmp / "index.npy", np.int64, (n_ends,))
    index_h = {h: NpyFile.create(tmp / f"index_h{h}.npy", np.int64, (n_h[h],)) for h in hs}
    at, at_h = 0, {h: 0 for h in hs}
    for _a, _codes, ends, per_h in sweep():
        index.write(at, ends)
        at += ends.size
        for h, (idx_h, _lab) in per_h.items():
            index_h[h].write(at_h[h], idx_h)
            at_h[h] += idx_h.size

    return {
        "rows": n,
        "rows_features_finite": int(row_ok.sum()),
        "windows": int(n_ends),
        "rows_per_symbol": dict(zip(symbols, rows_per_symbol.tolist())),
        "windows_per_symbol": dict(zip(symbols, windows_per_symbol.tolist())),
        "horizons": {str(h): {"windows": int(n_h[h]), "down": int(classes[h][0]), "flat": int(classes[h][1]), "up": int(classes[h][2])} for h in hs},
    }


def _add_folds(path: Path, tmp: Path, meta: dict, folds: Sequence[dict], features: list[str]) -> dict:
    """Each fold's boundaries, scaler and window counts into meta (roles.npy is written)."""
    roles = NpyFile.open(tmp / "roles.npy")
    index = NpyFile.open(tmp / "index.npy")
    K = len(folds)
    windows = np.zeros((K, 4), dtype=np.int64)  # [fold, role code]: window ends of that role
    for a, b in _blocks(index.rows if K else 0, _INDEX_BLOCK_ROWS):
        ends = index.read(a, b)
        if ends.size == 0:
            continue
        ends_roles = roles.read(int(ends[0]), int(ends[-1]) + 1)[ends - ends[0]]  # [W, K]
        for k in range(K):
            windows[k] += [int((ends_roles[:, k] == code).sum()) for code in range(4)]
    meta["scaled"] = False
    meta["folds"] = []
    for k, f in enumerate(folds):
        counts = {role: int(windows[k, code]) for role, code in (("train", 1), ("val", 2), ("test", 3))}
        empty = [role for role, count in counts.items() if count == 0]
        if empty:  # before the store replaces the previous one: nothing half-usable is left behind
            raise DataValidationError(f"{path}: fold {k} has no {empty[0]} windows of {meta['seq_len']} bars; shorten window.seq_len or widen the split.* blocks")
        meta["folds"].append(
            {
                **{key: v for key, v in f.items() if key not in ("scaler", "report")},
                # feature -> [mean, std, 1 for z-score (clipped) / 0 for identity]
                "scaler": {c: [float(f["scaler"][c]["mean"]), float(f["scaler"][c]["std"]), int(f["scaler"][c]["kind"] == "zscore")] for c in features},
                "windows": counts,
            }
        )
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _reserve(path: Path) -> None:
    """Allocate the (sparse) memmap file's blocks up front: a full disk then fails here with
    ENOSPC instead of a SIGBUS while writing through the mapping, and first-touch page
    faults need no block allocation (about 2x faster writes on ext4)."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise OSError(e.errno, f"{path}: no space left for the window store ({e.strerror})") from e
        # EOPNOTSUPP / EINVAL: a filesystem without fallocate; the writes still work
    finally:
        os.close(fd)


def _check_order(path: Path, codes: np.ndarray, dts: np.ndarray, symbols: list[str], start: int = 0) -> None:
    """Each symbol's rows contiguous; datetimes strictly increasing within a symbol (``codes``
    and ``dts`` are rows ``start ..`` of the file, for the messages)."""
    if codes.shape[0] < 2:
        return
    dc = np.diff(codes)
    # codes are given in order of first appearance, so contiguous runs <=> steps of 0 or +1
    bad = np.flatnonzero((dc != 0) & (dc != 1))
    if bad.size:
        i = int(bad[0]) + 1
        raise DataValidationError(f"{path}: symbol {symbols[codes[i]]!r} reappears at row {start + i} after other symbols; rows must be sorted by (symbol, datetime)")
    bad = np.flatnonzero((dc == 0) & (np.diff(dts) <= 0))
    if bad.size:
        i = int(bad[0]) + 1
        raise DataValidationError(f"{path}: symbol {symbols[codes[i]]!r} has a non-increasing or duplicate datetime at row {start + i}; rows must be sorted by (symbol, datetime) with one row per bar")
