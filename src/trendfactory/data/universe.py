"""Checks over the whole universe, after every source's bars are validated and combined.

Two things a per-file check cannot judge:

- history length (``data.min_history``): a symbol with fewer bars than the features' warm-up
  plus the label span (a recent IPO) has no complete row. ``drop`` leaves it out with a
  warning naming its file; ``error`` stops. A universe where every symbol is too short stops
  either way, since nothing would be left to learn from.
- unadjusted splits (``data.on_jump``): a one-bar close-to-close move beyond ``data.jump_ratio``
  (up or down) that the rest of the universe did not share is almost always a split or a bad
  tick, not a return; left in, it becomes a huge label and a feature outlier. "Shared" means
  the median one-bar log return of the other symbols at that bar went the same way by at least
  half the jump's size (a market-wide crash is not flagged); a symbol alone at that bar is
  judged on its own move. A split is also a clean step: the price holds its old level before
  and its new level after. A move whose price crosses back over the midway level (geometric
  mean of the two closes) within ``HOLD_BARS`` bars on either side -- a one-bar bad print, or
  the stale quotes of an illiquid stock -- is not flagged. (The embedded data has one: RRC on
  1990-04-10 quoted 3.322 -> 1.107, x0.333, back above 1.92 eleven bars later and at 3.322
  again by June.)

Both work on a universe that is ingested a chunk of symbols at a time: the history check
judges every symbol's bar count before any chunk is loaded (:func:`min_history_drops`), and the
split check finds each chunk's candidate steps (:func:`jump_candidates`, a symbol's own bars)
and judges them once every chunk is written, against the other symbols' returns at just those
times (:func:`returns_at`, :func:`judge_jumps`): a median does not merge, but the few rows it
needs can be gathered.

Every message names the user's file (the ``origins`` symbol -> file map), never an
intermediate file of the pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.errors import DataValidationError
from trendfactory.params import FeaturesConfig, LabelConfig

log = logging.getLogger("trendfactory")

# Bars on each side of a jump within which an unadjusted split's price levels must hold (about a
# month of daily bars): a real split would need a move of sqrt(jump_ratio) that fast to fail it.
HOLD_BARS = 20


# ----------------------------------------------------------------------------------------------
# history length
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryNeed:
    """Bars each symbol needs, and why (for the message)."""

    bars: int
    why: str


def required_history(features: FeaturesConfig, label: LabelConfig) -> HistoryNeed:
    """The featurize stage's own minimum (features.build.build_features): the longest stock
    feature's warm-up, plus the entry lag and the longest horizon, plus one labelled row."""
    from trendfactory.features.stock import warmup_bars  # lazy: the features package loads torch

    warmup = warmup_bars(features)
    horizon = max(label.horizons)
    return HistoryNeed(
        warmup + label.entry_lag + horizon + 1,
        f"{warmup} warm-up bars + entry lag {label.entry_lag} + horizon {horizon} + 1",
    )


def min_history_drops(counts: pd.Series, need: HistoryNeed, origins: dict[str, str], policy: str, span: str = "") -> dict[str, dict]:
    """The symbols shorter than ``need`` that policy ``drop`` leaves out (symbol -> file, bars,
    needed), from the bars per symbol (``counts``, indexed by symbol); policy ``error`` stops at
    the first short symbol. Counts, not bars: a universe read chunk by chunk is judged whole
    before any chunk is written.

    ``span`` says where the bars were counted (e.g. " between data.start ... and data.end ...")."""
    counts = counts.sort_index()
    short = counts[counts < need.bars]
    if short.empty:
        return {}
    if len(short) == len(counts):
        raise _all_too_short(counts, need, origins, span)
    if policy == "error":
        sym, n = str(short.index[0]), int(short.iloc[0])
        more = f" (and {len(short) - 1} more symbol(s))" if len(short) > 1 else ""
        raise DataValidationError(
            f"{origins.get(sym, 'bars')}: symbol {sym} has {n} bars{span}, fewer than the {need.bars} needed "
            f"({need.why}){more}; give it more history, set data.min_history: drop to leave such symbols out, "
            "or shorten the lookbacks/horizons in params.yaml"
        )
    dropped = {}
    for sym, n in short.items():
        file = origins.get(str(sym), "bars")
        log.warning(
            "%s (%s): %d bars%s, fewer than the %d needed (%s); dropped from the universe (data.min_history: drop)",
            sym,
            file,
            n,
            span,
            need.bars,
            need.why,
        )
        dropped[str(sym)] = {"file": file, "bars": int(n), "needed": need.bars}
    return dropped


def _all_too_short(counts: pd.Series, need: HistoryNeed, origins: dict[str, str], span: str) -> DataValidationError:
    longest = str(counts.idxmax())
    return DataValidationError(
        f"{origins.get(longest, 'bars')}: every symbol has fewer than the {need.bars} bars needed ({need.why}); "
        f"the longest, {longest}, has {int(counts.max())}{span}; give more history or shorten the "
        "lookbacks/horizons in params.yaml"
    )


# ----------------------------------------------------------------------------------------------
# unadjusted splits
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Jump:
    """One suspicious one-bar move of one symbol."""

    symbol: str
    when: pd.Timestamp
    before: float  # previous close
    after: float  # this bar's close
    universe: float | None  # the other symbols' median one-bar price ratio then; None when alone

    @property
    def ratio(self) -> float:
        return self.after / self.before


@dataclass(frozen=True)
class JumpCandidate:
    """A one-bar move beyond the jump ratio that is a clean step (:func:`_is_step`): a jump
    unless the rest of the universe moved with it (judged by :func:`judge_jumps`)."""

    symbol: str
    time: int  # ns since epoch of the bar
    logret: float
    before: float  # previous close
    after: float  # this bar's close


def _log_returns(bars: pd.DataFrame) -> np.ndarray:
    """[N] one-bar log return of each row within its symbol (NaN on a symbol's first bar)."""
    return np.log(bars["close"]).groupby(bars["symbol"], sort=False).diff().to_numpy()


def _times(bars: pd.DataFrame) -> np.ndarray:
    return bars["datetime"].to_numpy().astype("datetime64[ns]").view(np.int64)


def jump_candidates(bars: pd.DataFrame, jump_ratio: float) -> list[JumpCandidate]:
    """The candidate jumps of ``bars`` (sorted by symbol, datetime; whole symbols, so a chunk
    of the universe finds exactly its own symbols' candidates)."""
    logret = _log_returns(bars)
    with np.errstate(invalid="ignore"):
        big = np.flatnonzero(np.abs(logret) > np.log(jump_ratio))
    if big.size == 0:
        return []
    close = bars["close"].to_numpy(dtype=np.float64)
    symbols, log_close, times = bars["symbol"].to_numpy(), np.log(close), _times(bars)
    return [
        JumpCandidate(str(symbols[i]), int(times[i]), float(logret[i]), float(close[i - 1]), float(close[i]))
        for i in big
        if _is_step(log_close, symbols, i)  # else the old level comes back (or was brief): a stale or bad quote
    ]


def returns_at(bars: pd.DataFrame, times: np.ndarray) -> pd.DataFrame:
    """Every row's one-bar log return at ``times`` (int64 ns): symbol, time, logret. The few
    rows the jump judgement needs, gathered chunk by chunk."""
    t = _times(bars)
    rows = np.flatnonzero(np.isin(t, times))
    return pd.DataFrame({"symbol": bars["symbol"].to_numpy()[rows].astype(str), "time": t[rows], "logret": _log_returns(bars)[rows]})


def judge_jumps(candidates: list[JumpCandidate], returns: pd.DataFrame) -> list[Jump]:
    """The candidates the universe did not move with, by time: ``returns`` holds every
    symbol's one-bar log return at the candidates' times (:func:`returns_at`)."""
    by_time = {int(t): part for t, part in returns.groupby("time", sort=False)}
    jumps = []
    for c in candidates:
        rows = by_time.get(c.time)
        median = None if rows is None else _others_median(rows, c.symbol)
        if median is not None and median * np.sign(c.logret) >= 0.5 * abs(c.logret):
            continue  # the universe moved with it: a market move, not a split
        universe = None if median is None else float(np.exp(median))
        jumps.append(Jump(c.symbol, pd.Timestamp(c.time), c.before, c.after, universe))
    return sorted(jumps, key=lambda j: (j.when, j.symbol))


def _is_step(log_close: np.ndarray, symbols: np.ndarray, i: int) -> bool:
    """Whether the move into bar ``i`` is a clean step, as a split is: the symbol's closes stay
    on the old side of the midway level for up to HOLD_BARS bars before it and on the new side
    for up to HOLD_BARS bars from it. A bad print (there and back) fails on one side."""
    lo, hi = max(i - HOLD_BARS, 0), i + 1 + HOLD_BARS
    before = log_close[lo:i][symbols[lo:i] == symbols[i]]
    after = log_close[i:hi][symbols[i:hi] == symbols[i]]
    midway = 0.5 * (log_close[i - 1] + log_close[i])
    direction = np.sign(log_close[i] - log_close[i - 1])
    return bool(np.all(direction * (before - midway) < 0) and np.all(direction * (after - midway) > 0))


def _others_median(rows: pd.DataFrame, symbol: str) -> float | None:
    """Median one-bar log return of the symbols other than ``symbol`` in ``rows`` (every row
    at one time); None when no other symbol has one."""
    others = rows["logret"].to_numpy()[rows["symbol"].to_numpy() != symbol]
    others = others[np.isfinite(others)]
    return float(np.median(others)) if others.size else None


def _stamp(t: pd.Timestamp) -> str:
    return str(t.date()) if t == t.normalize() else str(t)


def describe_jump(jump: Jump, origins: dict[str, str], fix: str, more: int = 0) -> str:
    """'AAPL (data/aapl.csv) 2014-06-09: close moved x0.143 in one bar ...; <fix>' (one line)."""
    crowd = "no other symbol has a bar then" if jump.universe is None else f"the other symbols' median moved x{jump.universe:.3g}"
    others = f" (and {more} more such jump(s))" if more else ""
    return (
        f"{jump.symbol} ({origins.get(jump.symbol, 'bars')}) {_stamp(jump.when)}: close moved x{jump.ratio:.3g} in one bar "
        f"({jump.before:.6g} -> {jump.after:.6g}) while {crowd}; looks like an unadjusted split{others}; {fix}"
    )


def report_jumps(jumps: list[Jump], origins: dict[str, str], policy: str) -> None:
    """``warn``: one warning line per jump; ``error``: stop with the first and a count of the rest."""
    if not jumps:
        return
    if policy == "error":
        fix = "adjust the prices (or give an adjusted close column) or set data.on_jump: warn to keep them"
        raise DataValidationError(describe_jump(jumps[0], origins, fix, more=len(jumps) - 1))
    fix = "adjust the prices (or give an adjusted close column) or set data.on_jump: error to stop on such moves"
    for jump in jumps:
        log.warning("%s", describe_jump(jump, origins, fix))
