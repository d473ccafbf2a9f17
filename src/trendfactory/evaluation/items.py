"""One model x horizon item's predictions and metrics, as the evaluate, ensemble and compare
stages read and write them: the prediction files, a split's metrics and long/short book, the
per-period view, the headline numbers of metrics/eval/<item>.json, the confusion counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.evaluation.metrics import classification_metrics, confusion, daily_ic, ic_metrics, long_short_book, trading_metrics
from trendfactory.evaluation.seeds import mean_predictions, seed_frames
from trendfactory.evaluation.significance import annualised_sharpe
from trendfactory.models import get_model_class
from trendfactory.models.registry import train_stage
from trendfactory.params import Params
from trendfactory.paths import EVAL_DIR, predictions_file

CLASS_NAMES = ("down", "flat", "up")  # the labels -1, 0, +1
DETAIL_FILE = "detail.json"  # every metric of an item (not a DVC metric: too many keys to read)
HEADLINE_KEYS = (  # (key in metrics/eval/<item>.json, key in the test metrics)
    ("rank_ic", "rank_ic"),
    ("rank_ic_t", "rank_ic_t"),
    ("rank_ic_p", "rank_ic_p"),
    ("ic", "ic"),
    ("sharpe", "sharpe"),
    ("f1", "macro_f1"),
    ("log_loss", "log_loss"),
    ("max_dd", "max_drawdown"),
)


def headline_file(item: str) -> Path:
    """metrics/eval/<item>.json: an item's headline numbers (a DVC metric, git-tracked)."""
    return EVAL_DIR / f"{item}.json"


def read_predictions(model: str, horizon: int, split: str, seed_mean: bool = False, per_fold: bool = False) -> pd.DataFrame:
    """One item's walk-forward predictions of a split, one row per (symbol, datetime, seed); val
    rows scored by two folds (when split.val_years > split.fold) keep the later fold's, unless
    ``per_fold`` (then each fold's rows as its own fit scored them: what walk-forward selection
    reads). ``seed_mean``: one row per (symbol, datetime), the seeds' averaged predictions."""
    path = predictions_file(model, horizon, split, get_model_class(model).joint)
    if not path.is_file():
        raise TrendfactoryError(f"{path}: missing; run `dvc repro {train_stage(model, horizon)}` first")
    frame = pd.read_parquet(path)
    if "seed" not in frame.columns:
        raise TrendfactoryError(f"{path}: written by an older version (no seed column); rerun `dvc repro {train_stage(model, horizon)}`")
    keys = ["seed", "symbol", "datetime"]
    frame = frame.sort_values(["fold", *keys], kind="stable")
    if per_fold:
        return frame.reset_index(drop=True)
    frame = frame.drop_duplicates(keys, keep="last").sort_values(keys, kind="stable").reset_index(drop=True)
    return mean_predictions(frame) if seed_mean else frame


def seed_books(frame: pd.DataFrame, horizon: int, next_returns: pd.DataFrame, entry_lag: int, cost_bps: float) -> list[pd.DataFrame]:
    """The long/short book of each seed's predictions."""
    return [long_short_book(f, next_returns, horizon, entry_lag, cost_bps) for f in seed_frames(frame)]


def split_metrics(frame: pd.DataFrame, horizon: int, next_returns: pd.DataFrame, entry_lag: int, params: Params) -> tuple[dict, pd.DataFrame]:
    """(metrics, daily book) of one seed's predictions of a split."""
    book = long_short_book(frame, next_returns, horizon, entry_lag, params.evaluate.cost_bps)
    proba = frame[["p_down", "p_flat", "p_up"]].to_numpy()
    metrics = {
        **classification_metrics(frame["label"].to_numpy(), frame["pred"].to_numpy(), proba),
        **ic_metrics(frame, horizon),
        **trading_metrics(book, params.evaluate.bars_per_year),
    }
    return metrics, book


def by_period(frame: pd.DataFrame, book: pd.DataFrame, keys: pd.Series, bars_per_year: float) -> dict[str, dict]:
    """Rank IC, IC and net Sharpe per group of dates (a year, a fold): the stability view."""
    ric, ic = daily_ic(frame, "spearman"), daily_ic(frame, "pearson")
    date_key = pd.Series(keys.to_numpy(), index=frame["datetime"].to_numpy())
    date_key = date_key[~date_key.index.duplicated()]
    out = {}
    for key in sorted(date_key.unique()):
        dates = date_key.index[date_key.to_numpy() == key]
        r, i = ric[ric.index.isin(dates)], ic[ic.index.isin(dates)]
        net = book["net"][book.index.isin(dates)].to_numpy()
        # a period with a non-finite net return has no Sharpe, as by_period always reported it
        # (annualised_sharpe alone would drop those bars); a book's net is finite by construction
        sharpe = annualised_sharpe(net, bars_per_year) if np.isfinite(net).all() else None
        out[str(key)] = {"rank_ic": float(r.mean()) if len(r) else None, "ic": float(i.mean()) if len(i) else None, "sharpe": sharpe, "dates": int(len(r))}
    return out


def headline_metrics(test: dict, val: dict | None = None) -> dict:
    """The dozen numbers of an item's git-tracked metrics file (metrics/eval/<item>.json):
    out-of-sample Rank IC and its Newey-West t, IC, net Sharpe, macro F1, balanced accuracy,
    log loss, max drawdown, and the validation Rank IC and t the selection uses. Short flat keys,
    so `dvc metrics show` of every item fits in a terminal; the rest is in detail.json."""
    out = {key: test.get(src) for key, src in HEADLINE_KEYS}
    if val is not None:
        out["val_rank_ic"], out["val_rank_ic_t"] = val.get("rank_ic"), val.get("rank_ic_t")
    return {k: (round(float(v), 6) if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) else None) for k, v in out.items()}


def confusion_counts(y_true: np.ndarray, pred: np.ndarray) -> list[dict]:
    """The confusion matrix as 9 rows of counts with class names (down / flat / up), for the
    `confusion_counts` plot template (.dvc/plots/): kilobytes, not one row per sample."""
    counts = confusion(y_true, pred)  # [true class, predicted class] in LABELS order
    return [{"actual": CLASS_NAMES[i], "predicted": CLASS_NAMES[j], "count": int(counts[i, j])} for i in range(len(CLASS_NAMES)) for j in range(len(CLASS_NAMES))]
