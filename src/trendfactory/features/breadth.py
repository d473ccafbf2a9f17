"""Cross-sectional (breadth) statistics per datetime, accumulated chunk by chunk of symbols.

The context tower's universe features -- the equal-weight index, the share of symbols above
their moving average or up over n bars, the dispersion of n-bar returns -- are aggregates over
every symbol at each datetime. A chunk of symbols yields its partial aggregates
(:func:`breadth_stats`); partials of disjoint chunks merge (:meth:`BreadthStats.merge`); the
features come from the merged whole (:mod:`trendfactory.features.context`).

Per datetime and lookback n >= 5 the partial holds: the count and mean of 1-bar log returns;
the counts of symbols with an n-bar SMA and of those above it; the counts of symbols with an
n-bar return and of those up; the count, mean and sample variance of n-bar returns. Counts
merge exactly; means and variances with the pairwise update of
:func:`trendfactory.features.splits.merge_moments`. One chunk's statistics are pandas' own
groupby mean/var, so the whole universe in one chunk gives exactly the values computed
without chunks; several chunks agree with them to rounding (~1e-15 relative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.features.splits import merge_moments

_COUNT_SUFFIXES = ("_n", "_k")  # columns that are counts (NaN-free after a merge: absent = 0)


@dataclass
class BreadthStats:
    """Partial cross-sectional aggregates per datetime (index: datetimes, sorted)."""

    frame: pd.DataFrame
    lookbacks: tuple[int, ...]  # the n >= 5 of features.context_lookbacks

    def merge(self, other: "BreadthStats") -> "BreadthStats":
        """The aggregates of both chunks' symbols together (the chunks share no symbol)."""
        dates = self.frame.index.union(other.frame.index)
        a, b = self.frame.reindex(dates), other.frame.reindex(dates)
        counts = [c for c in a.columns if c.endswith(_COUNT_SUFFIXES)]
        a[counts], b[counts] = a[counts].fillna(0.0), b[counts].fillna(0.0)
        out = {}
        zeros = np.zeros(len(dates))
        out["lr_n"], out["lr_mean"], _ = merge_moments((a["lr_n"], a["lr_mean"], zeros), (b["lr_n"], b["lr_mean"], zeros), ddof=0)
        for n in self.lookbacks:
            for c in (f"above_{n}_n", f"above_{n}_k", f"up_{n}_n", f"up_{n}_k"):
                out[c] = a[c].to_numpy() + b[c].to_numpy()  # counts: exact
            r = f"ret_{n}"
            out[f"{r}_n"], out[f"{r}_mean"], out[f"{r}_var"] = merge_moments((a[f"{r}_n"], a[f"{r}_mean"], a[f"{r}_var"]), (b[f"{r}_n"], b[f"{r}_mean"], b[f"{r}_var"]), ddof=1)
        return BreadthStats(pd.DataFrame(out, index=dates)[list(self.frame.columns)], self.lookbacks)

    def ew_return(self) -> pd.Series:
        """Mean 1-bar log return across symbols (NaN where none has one)."""
        return self.frame["lr_mean"]

    def share_above_ma(self, n: int) -> pd.Series:
        """Share of the symbols with an n-bar SMA whose close is above it."""
        return self.frame[f"above_{n}_k"] / self.frame[f"above_{n}_n"]

    def share_up(self, n: int) -> pd.Series:
        """Share of the symbols with an n-bar return whose return is positive."""
        return self.frame[f"up_{n}_k"] / self.frame[f"up_{n}_n"]

    def dispersion(self, n: int) -> pd.Series:
        """Cross-sectional sample std of n-bar log returns; 0 where one symbol has a value.

        A sample std of one value is undefined (NaN), which would drop every window of that
        symbol ending within seq_len bars of the date (a universe thinned to one symbol by
        IPOs, delistings or another exchange's holiday). One return has no spread: 0 is its
        dispersion. Dates where two or more symbols have a value are unchanged; none stays
        NaN (warm-up)."""
        std = np.sqrt(self.frame[f"ret_{n}_var"])
        return std.mask(self.frame[f"ret_{n}_n"] == 1, 0.0)


def breadth_lookbacks(context_lookbacks) -> tuple[int, ...]:
    """The lookbacks with breadth features (n >= 5; shorter ones only feed the ew index's blocks)."""
    return tuple(n for n in sorted(set(context_lookbacks)) if n >= 5)


def breadth_stats(bars: pd.DataFrame, context_lookbacks) -> BreadthStats:
    """Partial aggregates of ``bars`` (whole symbols, sorted by symbol, datetime)."""
    lookbacks = breadth_lookbacks(context_lookbacks)
    by_sym = bars.groupby("symbol", sort=False)["close"]
    logret = np.log(bars["close"]).groupby(bars["symbol"], sort=False).diff()
    dt = bars["datetime"]
    g = logret.groupby(dt)
    cols: dict[str, pd.Series] = {"lr_n": g.count().astype(np.float64), "lr_mean": g.mean()}
    for n in lookbacks:
        ret_n = np.log(bars["close"] / by_sym.shift(n))
        ma_n = by_sym.transform(lambda s, n=n: s.rolling(n, min_periods=n).mean())
        above = (bars["close"] > ma_n).astype(np.float64).where(ma_n.notna()).groupby(dt)
        up = (ret_n > 0).astype(np.float64).where(ret_n.notna()).groupby(dt)
        ret = ret_n.groupby(dt)
        cols[f"above_{n}_n"], cols[f"above_{n}_k"] = above.count().astype(np.float64), above.sum()
        cols[f"up_{n}_n"], cols[f"up_{n}_k"] = up.count().astype(np.float64), up.sum()
        cols[f"ret_{n}_n"], cols[f"ret_{n}_mean"], cols[f"ret_{n}_var"] = ret.count().astype(np.float64), ret.mean(), ret.var()
    return BreadthStats(pd.DataFrame(cols).sort_index(), lookbacks)
