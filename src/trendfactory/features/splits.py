"""Time splits with purge and embargo (leakage rule 4) and the train-only scaler (rule 5)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trendfactory.params import SplitConfig, split_dates

SPLITS = ("train", "val", "test")
# Per-row role of a row in one fold (int8 in the window store's roles.npy): a row outside the
# fold, purged or embargoed has NO_ROLE.
NO_ROLE = 0
ROLE_CODES = {"train": 1, "val": 2, "test": 3}


@dataclass(frozen=True)
class Fold:
    """One fold's blocks as half-open time intervals [start, end): train [train_start, val_start),
    val [val_start, test_start), test [test_start, test_end). ``train_start`` None = from the
    first bar (expanding); ``test_end`` None = to the last bar."""

    index: int
    train_start: pd.Timestamp | None
    val_start: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp | None

    @property
    def name(self) -> str:
        return fold_name(self.index)

    def to_json(self) -> dict:
        iso = lambda t: None if t is None else str(t.date())  # noqa: E731 - boundaries are dates
        return {"index": self.index, "train_start": iso(self.train_start), "val_start": iso(self.val_start), "test_start": iso(self.test_start), "test_end": iso(self.test_end)}


def fold_name(index: int) -> str:
    """``fold_03``: the name of fold 3's role column and model directory."""
    return f"fold_{int(index):02d}"


@dataclass
class SplitResult:
    assignment: np.ndarray  # [N] object: 'train' | 'val' | 'test' | 'purged' | 'embargoed' | 'outside'
    report: dict = field(default_factory=dict)

    @property
    def roles(self) -> np.ndarray:
        """[N] int8 role codes (``ROLE_CODES``; ``NO_ROLE`` for purged, embargoed, outside)."""
        out = np.zeros(len(self.assignment), dtype=np.int8)
        for name, code in ROLE_CODES.items():
            out[self.assignment == name] = code
        return out


def _day(d: _dt.date | str) -> pd.Timestamp:
    return pd.Timestamp(str(d)[:10])


def _next_day(d: _dt.date) -> pd.Timestamp:
    """The first instant after date ``d`` (a block that ends on ``d`` includes all of ``d``)."""
    return _day(d) + pd.Timedelta(days=1)


def plan_folds(split: SplitConfig, first: pd.Timestamp, last: pd.Timestamp) -> list[Fold]:
    """The folds of ``split`` over bars dated ``first`` .. ``last``.

    fixed: one fold, train to ``train_end``, val to ``val_end``, test after it.
    walk_forward: test blocks of ``fold`` years from ``test_start`` until the data ends; each
    validates on the ``val_years`` before its test block and trains on everything before that
    (or the ``train_years`` before it).
    """
    if split.scheme == "fixed":
        train_end, val_end = split_dates(split)
        return [Fold(0, None, _next_day(train_end), _next_day(val_end), None)]
    folds = []
    t = _day(split.test_start)
    while t <= last:
        val_start = t - pd.DateOffset(years=split.val_years)
        train_start = None if split.train_years is None else val_start - pd.DateOffset(years=split.train_years)
        end = t + pd.DateOffset(years=split.fold)
        folds.append(Fold(len(folds), train_start, val_start, t, None if end > last else end))
        t = end
    return folds


def assign_roles(bars: pd.DataFrame, sym_id: np.ndarray, fold: Fold, horizons: tuple[int, ...], entry_lag: int, embargo: int) -> SplitResult:
    """Each row's role in ``fold``, with purge and embargo at each of the fold's boundaries.

    Purge: a train (val) row is dropped when the exit bar of any horizon's label
    (t + entry_lag + h, same symbol) falls at or after the start of val (test): no label of a
    row the model learns or selects on reaches into a later block. Embargo: the first
    ``embargo`` bars of each symbol in val and in test are dropped, so serially correlated
    features just before a boundary never sit next to the samples just after it.
    Rows sorted by (symbol, datetime) are assumed (featurize's order).
    """
    dt = bars["datetime"].to_numpy()
    n = len(bars)
    # block 0 train, 1 val, 2 test, 3 outside the fold
    edges = np.array([fold.val_start.to_datetime64(), fold.test_start.to_datetime64()], dtype="datetime64[ns]")
    block = np.searchsorted(edges, dt, side="right").astype(np.int64)  # dt >= edge -> next block
    if fold.train_start is not None:
        block[dt < fold.train_start.to_datetime64()] = 3
    if fold.test_end is not None:
        block[dt >= fold.test_end.to_datetime64()] = 3
    block_end = np.array([edges[0], edges[1], np.datetime64("NaT"), np.datetime64("NaT")], dtype="datetime64[ns]")[block]

    crosses = np.zeros(n, dtype=bool)
    for h in horizons:
        exit_pos = np.arange(n) + entry_lag + h
        has_exit = exit_pos < n
        has_exit[has_exit] = sym_id[exit_pos[has_exit]] == sym_id[has_exit]
        exit_dt = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        exit_dt[has_exit] = dt[exit_pos[has_exit]]
        # NaT comparisons are False: test rows (no later block) and rows without an exit never purge.
        crosses |= has_exit & (block < 2) & (exit_dt >= block_end)

    # Position of each row within its (symbol, block) run, for the embargo.
    run = sym_id.astype(np.int64) * 4 + block
    starts = np.concatenate([[0], np.flatnonzero(run[1:] != run[:-1]) + 1]) if n else np.zeros(0, np.int64)
    lengths = np.diff(np.concatenate([starts, [n]]))
    pos_in_block = np.arange(n) - np.repeat(starts, lengths)
    embargoed = ((block == 1) | (block == 2)) & (pos_in_block < embargo)

    names = np.array((*SPLITS, "outside"), dtype=object)[block]
    assignment = names.copy()
    assignment[crosses] = "purged"
    assignment[embargoed & ~crosses] = "embargoed"
    report = {
        "rows": {s: int((assignment == s).sum()) for s in SPLITS},
        "purged": {s: int((crosses & (names == s)).sum()) for s in SPLITS[:2]},
        "embargoed": {s: int((embargoed & ~crosses & (names == s)).sum()) for s in SPLITS[1:]},
    }
    for s in SPLITS:
        rows = dt[assignment == s]
        report.setdefault("dates", {})[s] = [str(pd.Timestamp(rows.min()).date()), str(pd.Timestamp(rows.max()).date())] if rows.size else None
    return SplitResult(assignment=assignment, report=report)


def merge_reports(a: dict, b: dict) -> dict:
    """One fold's :func:`assign_roles` report over two disjoint sets of symbols (chunks): row,
    purge and embargo counts add up, each split's date range spans both."""
    dates = {}
    for s in SPLITS:
        ranges = [r for r in (a["dates"][s], b["dates"][s]) if r is not None]
        dates[s] = [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None  # ISO dates sort by time
    return {
        "rows": {s: a["rows"][s] + b["rows"][s] for s in a["rows"]},
        "purged": {s: a["purged"][s] + b["purged"][s] for s in a["purged"]},
        "embargoed": {s: a["embargoed"][s] + b["embargoed"][s] for s in a["embargoed"]},
        "dates": dates,
    }


def merge_moments(a: tuple, b: tuple, ddof: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean, variance) of two disjoint samples merged (Chan et al.'s pairwise update),
    elementwise over arrays; ``ddof`` as the variances were computed with (a variance of
    ``count <= ddof`` values may be NaN). Where one side is empty the other is returned as it
    is, bit for bit: a statistic of one chunk does not move by merging nothing into it."""
    na, ma, va = (np.asarray(x, dtype=np.float64) for x in a)
    nb, mb, vb = (np.asarray(x, dtype=np.float64) for x in b)
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = mb - ma
        mean = ma + delta * (nb / n)
        m2 = np.where(na > ddof, va * (na - ddof), 0.0) + np.where(nb > ddof, vb * (nb - ddof), 0.0) + delta**2 * (na * nb / n)
        var = np.where(n > ddof, m2 / (n - ddof), np.nan)
    mean = np.where(nb == 0, ma, np.where(na == 0, mb, mean))
    var = np.where(nb == 0, va, np.where(na == 0, vb, var))
    return n, mean, var


@dataclass(frozen=True)
class ColumnStats:
    """What the train-only scaler and the uninformative-feature check need of one column's
    train rows, mergeable across chunks of symbols (:meth:`merge`).

    ``mean``/``var`` are ``np.nanmean``/``np.nanvar`` (NaN ignored, ddof 0) of the values;
    finite values give the rest: their count, min, max, and how many are not -1, 0 or 1."""

    n: int
    mean: float
    var: float
    finite: int
    low: float
    high: float
    not_signal: int

    @classmethod
    def of(cls, values: np.ndarray) -> "ColumnStats":
        v = np.asarray(values, dtype=np.float64)
        n = int(np.count_nonzero(~np.isnan(v)))
        mean, var = (float(np.nanmean(v)), float(np.nanvar(v))) if n else (np.nan, np.nan)
        finite = v[np.isfinite(v)]
        if finite.size == 0:
            return cls(n, mean, var, 0, np.nan, np.nan, 0)
        not_signal = int(np.count_nonzero((finite != -1.0) & (finite != 0.0) & (finite != 1.0)))
        return cls(n, mean, var, int(finite.size), float(finite.min()), float(finite.max()), not_signal)

    def merge(self, other: "ColumnStats") -> "ColumnStats":
        n, mean, var = merge_moments((self.n, self.mean, self.var), (other.n, other.mean, other.var), ddof=0)
        return ColumnStats(
            int(n),
            float(mean),
            float(var),
            self.finite + other.finite,
            float(np.fmin(self.low, other.low)),
            float(np.fmax(self.high, other.high)),
            self.not_signal + other.not_signal,
        )

    @property
    def is_signal(self) -> bool:
        """A {-1, 0, 1} signal column (some finite value, none other): it stays unscaled."""
        return self.finite > 0 and self.not_signal == 0


def fit_scaler(train: pd.DataFrame, columns: list[str]) -> dict[str, dict]:
    """Per-column z-score parameters fitted on train rows only (NaNs ignored)."""
    return scaler_from_stats({col: ColumnStats.of(train[col].to_numpy(dtype=np.float64)) for col in columns})


def scaler_from_stats(stats: dict[str, ColumnStats]) -> dict[str, dict]:
    """:func:`fit_scaler` from each column's train statistics (merged over chunks of symbols)."""
    scaler = {}
    for col, s in stats.items():
        if s.is_signal:
            scaler[col] = {"kind": "identity", "mean": 0.0, "std": 1.0}
            continue
        std = float(np.sqrt(s.var))  # np.nanstd is the root of np.nanvar
        scaler[col] = {"kind": "zscore", "mean": float(s.mean), "std": std if std > 0 else 1.0}
    return scaler


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray, zscore: np.ndarray, clip: float) -> np.ndarray:
    """float32 (x - mean) / std, computed in float64, z-score columns clipped to +-clip (robust to
    outliers), signal columns (``zscore`` False) left as they are. ``x`` [n] or [n, F] with
    per-column ``mean``/``std``/``zscore``; NaN stays NaN. The one scaling rule: featurize's
    frames, the window store's fold views and the scorer all go through it."""
    v = (np.asarray(x, dtype=np.float64) - mean) / std
    np.clip(v, np.where(zscore, -clip, -np.inf), np.where(zscore, clip, np.inf), out=v)
    return v.astype(np.float32)


def apply_scaler(frame: pd.DataFrame, scaler: dict[str, dict], clip: float) -> pd.DataFrame:
    """Scaled float32 features (``standardise`` per column)."""
    out = {col: standardise(frame[col].to_numpy(dtype=np.float64), p["mean"], p["std"], p["kind"] == "zscore", clip) for col, p in scaler.items()}
    return pd.DataFrame(out, index=frame.index)
