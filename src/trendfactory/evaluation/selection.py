"""Walk-forward selection: which model each fold's test block is traded with, chosen from
validation data that ends before that block, and the out-of-sample series of those choices.

Why walk-forward: choosing one model per horizon on the folds' validation blocks *pooled* uses
blocks that lie inside earlier folds' test blocks (on the default data fold 1's validation
years 2009-10 are in fold 0's test block 2007-10), so the model reported out of sample for the
early years would have been chosen with later data. Here fold k's choice sees only the
validation blocks of folds 0..k -- each scored by the fit of its own fold, each ending (with
the purge) before test block k starts.

Why every validation block up to k, not only fold k's own: a fold's block is two years of ~20
symbols, and the daily Rank IC is noisy enough that two models' validation means differ by
more than their seed spread only rarely; the expanding window averages more dates for the
same look-ahead guarantee (every block still precedes test block k). Its cost is inertia: a
model that only became good recently needs a few blocks to win.

The stitched series is, on each date of test block k, the daily value (Rank IC, IC, net book
return) of fold k's choice. Switching models at a block's first date is something a trader
could have done: the choice is known when validation block k ends, before test block k's
first entry. Baselines are chosen the same way among the baselines, so the lead and the SPA
benchmark compare like with like.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SELECTION_METRIC = "rank_ic"  # mean daily validation Rank IC


@dataclass(frozen=True)
class FoldChoice:
    """Fold ``fold``'s choice: the model with the highest mean daily validation Rank IC over the
    validation blocks of folds 0..fold (``window``: first and last date), the runner-up, and
    whether the lead is a coin flip (smaller than the larger of the two models' seed spreads)."""

    fold: int
    chosen: str | None
    val_rank_ic: float | None
    runner_up: str | None = None
    runner_up_val_rank_ic: float | None = None
    seed_spread: float | None = None  # std across seeds of the window's mean val Rank IC
    coin_flip: bool = False
    window: tuple[str, str] | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["window"] = list(self.window) if self.window else None
        return out


def seed_daily_by_fold(frame: pd.DataFrame, daily: Callable[[pd.DataFrame], pd.Series]) -> dict[int, pd.DataFrame]:
    """{fold: [dates x seeds] daily statistic} of one model's validation predictions, each fold's
    rows as that fold's fit scored them (no de-duplication across folds: a date two folds' blocks
    share counts in each)."""
    out: dict[int, pd.DataFrame] = {}
    seed = frame["seed"] if "seed" in frame.columns else pd.Series(0, index=frame.index)
    for fold, rows in frame.groupby("fold", sort=True):
        cols = {int(s): daily(part) for s, part in rows.groupby(seed.loc[rows.index], sort=True)}
        out[int(fold)] = pd.DataFrame(cols).sort_index()
    return out


def _window_stats(by_fold: dict[int, pd.DataFrame], upto: int) -> tuple[float | None, float | None, tuple[str, str] | None]:
    """(mean daily value of the seeds' mean series, std across seeds of each seed's mean, date
    span) over the validation blocks of folds <= upto."""
    parts = [by_fold[f] for f in sorted(by_fold) if f <= upto]
    if not parts:
        return None, None, None
    wide = pd.concat(parts)  # [dates of the blocks, stacked] x seeds
    per_date = wide.mean(axis=1).dropna()
    if per_date.empty:
        return None, None, None
    per_seed = wide.mean(axis=0).dropna()
    spread = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None
    span = (str(pd.Timestamp(per_date.index.min()).date()), str(pd.Timestamp(per_date.index.max()).date()))
    return float(per_date.mean()), spread, span


def walk_forward_choices(val: dict[str, dict[int, pd.DataFrame]], folds: list[int]) -> list[FoldChoice]:
    """Each fold's choice among the models of ``val`` ({model: {fold: [dates x seeds] daily
    validation Rank IC}}) -- validation only: test data cannot reach this function.

    Ties are broken by name, so the choice is a function of the numbers alone."""
    choices = []
    for k in folds:
        stats = {}
        for model in sorted(val):
            mean, spread, span = _window_stats(val[model], k)
            if mean is not None and math.isfinite(mean):
                stats[model] = (mean, spread, span)
        if not stats:
            choices.append(FoldChoice(fold=k, chosen=None, val_rank_ic=None))
            continue
        ranked = sorted(stats, key=lambda m: (-stats[m][0], m))
        best = ranked[0]
        choice = FoldChoice(fold=k, chosen=best, val_rank_ic=stats[best][0], window=stats[best][2])
        if len(ranked) > 1:
            second = ranked[1]
            spreads = [s for s in (stats[best][1], stats[second][1]) if s is not None]
            spread = max(spreads) if spreads else None
            lead = stats[best][0] - stats[second][0]
            choice = FoldChoice(
                fold=k,
                chosen=best,
                val_rank_ic=stats[best][0],
                runner_up=second,
                runner_up_val_rank_ic=stats[second][0],
                seed_spread=spread,
                coin_flip=spread is not None and lead < spread,
                window=stats[best][2],
            )
        choices.append(choice)
    return choices


def fold_of_dates(dates: pd.Index, test_starts: list[pd.Timestamp]) -> np.ndarray:
    """[dates] the fold whose test block holds each date (block k: from its start to the next
    block's start); -1 before the first block."""
    starts = np.asarray(pd.to_datetime(pd.Series(test_starts)).to_numpy(), dtype="datetime64[ns]")
    return np.searchsorted(starts, np.asarray(pd.to_datetime(dates).to_numpy(), dtype="datetime64[ns]"), side="right") - 1


def stitch(daily: dict[str, pd.DataFrame], choices: list[FoldChoice], test_starts: list[pd.Timestamp]) -> pd.DataFrame:
    """The stitched out-of-sample series: on the dates of test block k, the rows of ``daily``
    ({model: [dates] columns}) of fold k's choice. Folds without a choice contribute nothing."""
    by_fold = {c.fold: c.chosen for c in choices if c.chosen is not None}
    parts = []
    for model in sorted(set(by_fold.values())):
        frame = daily[model]
        fold = fold_of_dates(frame.index, test_starts)
        keep = np.isin(fold, [k for k, m in by_fold.items() if m == model])
        parts.append(frame[keep])
    if not parts:
        first = next(iter(daily.values()), pd.DataFrame())
        return first.iloc[0:0]
    return pd.concat(parts).sort_index()


def chosen_by_fold(choices: list[FoldChoice]) -> str:
    """'gru (folds 0, 2), lstm (fold 1)': the choices in a phrase."""
    models: dict[str, list[int]] = {}
    for c in choices:
        if c.chosen is not None:
            models.setdefault(c.chosen, []).append(c.fold)
    return ", ".join(f"{m} (fold{'s' if len(f) > 1 else ''} {', '.join(map(str, f))})" for m, f in models.items()) or "none"
