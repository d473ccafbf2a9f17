"""Stage `evaluate@<model>-<h>`: measure one model at one horizon from its walk-forward predictions.

    python -m trendfactory.stages.evaluate --model xgboost --horizon 5

Reads data/predictions/<model>-h<h>/{val,test}_h<h>.parquet (each fold's fits on their own
blocks, written by the train stage) and writes:

- metrics/eval/<model>-h<h>.json -- the headline numbers (a DVC metric, git-tracked): out of
  sample Rank IC with its calibrated HAR t and p (the Newey-West t only in detail.json, as
  ``rank_ic_t_newey_west``), IC, net Sharpe, macro F1, balanced accuracy, log loss, max
  drawdown; validation Rank IC and t;
- metrics/eval/<model>-h<h>/detail.json -- everything (git-tracked, not a DVC metric): for
  ``val`` (the folds' validation blocks pooled) and ``test`` (the joined out-of-sample series)
  the classification, IC and trading metrics; ``test_by_year`` and ``test_by_fold`` (Rank IC, IC,
  Sharpe);
- metrics/eval/<model>-h<h>/plots/ (DVCLive) -- the confusion matrices as counts with class names,
  the out-of-sample long/short book against equal-weight buy-and-hold, and feature importance of
  the last fold's model (its own, or permutation importance per feature group on its val block).

With several seeds every metric is measured per seed and reported as the mean over seeds
(``seeds``: how many), with the std across seeds in detail.json's ``<split>_seed_std``; the
equity curve is the seeds' mean book, the confusion matrix and importance the first seed's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from trendfactory.evaluation import plots
from trendfactory.evaluation.importance import context_projection, feature_importance
from trendfactory.evaluation.metrics import classification_metrics, confusion, daily_ic, ic_metrics, long_short_book, next_bar_returns, trading_metrics
from trendfactory.evaluation.seeds import mean_daily, mean_metrics, mean_predictions, seed_frames
from trendfactory.io import atomic_dir, read_json, write_json
from trendfactory.models import TrendModel, get_model_class
from trendfactory.params import Params
from trendfactory.errors import TrendfactoryError
from trendfactory.models.registry import train_stage
from trendfactory.paths import EVAL_DIR, FEATURES_DIR, RAW_DIR, fitted_model_dir, item_id, model_dir, predictions_file
from trendfactory.stages.common import log, stage_main
from trendfactory.stages.store import add_args, load_split, open_store

SPLITS = ("val", "test")
TOP_FEATURES = 25  # features shown in the importance plot
CLASS_NAMES = ("down", "flat", "up")  # the labels -1, 0, +1
DETAIL_FILE = "detail.json"  # every metric of an item (not a DVC metric: too many keys to read)
HEADLINE_KEYS = (  # (key in metrics/eval/<item>.json, key in the test metrics)
    ("rank_ic", "rank_ic"), ("rank_ic_t", "rank_ic_t"), ("rank_ic_p", "rank_ic_p"), ("ic", "ic"), ("sharpe", "sharpe"), ("f1", "macro_f1"),
    ("log_loss", "log_loss"), ("max_dd", "max_drawdown"),
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
        sharpe = float(net.mean() / net.std(ddof=1) * np.sqrt(bars_per_year)) if len(net) > 1 and net.std(ddof=1) > 1e-12 else None
        out[str(key)] = {"rank_ic": float(r.mean()) if len(r) else None, "ic": float(i.mean()) if len(i) else None,
                         "sharpe": sharpe, "dates": int(len(r))}
    return out


def main_body(params: Params, args: argparse.Namespace) -> None:
    cls = get_model_class(args.model)
    if args.horizon is None:
        raise TrendfactoryError("--horizon: evaluate scores one horizon at a time; give one of label.horizons")
    h = args.horizon
    name = item_id(cls.name, h)
    schema = read_json(FEATURES_DIR / "schema.json")
    entry_lag = int(schema["label"]["entry_lag"])
    bars = pd.read_parquet(RAW_DIR / "bars.parquet", columns=["symbol", "datetime", "close"])
    next_returns = next_bar_returns(bars)

    from dvclive import Live

    # Every metric is measured on each seed's predictions, then averaged over seeds (std beside).
    results, spread = {}, {}
    by_year_seeds, by_fold_seeds = [], []
    bpy = params.evaluate.bars_per_year
    for split in SPLITS:
        frame = read_predictions(cls.name, h, split)
        frames = seed_frames(frame)
        per_seed = [split_metrics(f, h, next_returns, entry_lag, params) for f in frames]
        metrics, spread[split] = mean_metrics([m for m, _ in per_seed])
        results[split] = (frames, metrics, mean_daily([b for _, b in per_seed]))
        if split == "test":
            for f, (_, book) in zip(frames, per_seed):
                by_year_seeds.append(by_period(f, book, f["datetime"].dt.year, bpy))
                by_fold_seeds.append(by_period(f, book, f["fold"], bpy))
        log.info(
            "%s %s (%d folds, %d seed%s, %s rows): balanced acc %.4f, macro F1 %.4f, Rank IC %s%s (t %s), Sharpe %s after %g bp",
            name, split, frame["fold"].nunique(), len(per_seed), "s" if len(per_seed) > 1 else "", f"{len(frame):,}",
            metrics["balanced_accuracy"], metrics["macro_f1"], _fmt(metrics["rank_ic"]),
            f" ± {spread[split]['rank_ic']:.4f}" if spread[split].get("rank_ic") is not None else "",
            _fmt(metrics["rank_ic_t"], 2), _fmt(metrics["sharpe"], 2), params.evaluate.cost_bps,
        )
    n = len(results["test"][0])
    by_year, by_fold = mean_metrics(by_year_seeds)[0], mean_metrics(by_fold_seeds)[0]

    # Importance and embeddings: the last fold's model (trained on the most recent data).
    store = open_store()
    last = store.n_folds - 1
    model = TrendModel.load(fitted_model_dir(model_dir(cls.name, h, cls.joint), last, 0))
    importance = feature_importance(model, load_split("val", h, last), schema["feature_groups"], params.seed)

    detail = {"seeds": n, **{split: m for split, (_, m, _) in results.items()}, "test_by_year": by_year, "test_by_fold": by_fold}
    if n > 1:
        detail.update({f"{split}_seed_std": spread[split] for split in SPLITS})
    with atomic_dir(EVAL_DIR / name) as live_dir:
        with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
            for split, (frames, metrics, book) in results.items():
                first = frames[0]  # the confusion matrix of the first seed's fits
                live.log_plot(f"confusion_{split}", confusion_counts(first["label"].to_numpy(), first["pred"].to_numpy()),
                              x="actual", y="predicted", template="confusion_counts", title=f"{name} {split}: true vs predicted class")
            fig = plots.equity_figure({model.name: results["test"][2]}, {model.name: model.family},
                                      f"{name}, out of sample (all folds, mean of {n} seed{'s' if n > 1 else ''})")
            live.log_image("equity_test.png", plots.to_image(fig))
            plots.close(fig)
            projection = context_projection(model, load_split("test", h, last))
            if projection is not None:
                points, regime, feature = projection
                fig = plots.embedding_figure(points, regime, f"{name}: context embeddings of the last fold's test dates", f"{feature} (trailing market log return)")
                live.log_image("context_embedding.png", plots.to_image(fig))
                plots.close(fig)
            ranked = importance["features"] or importance["groups"]
            top = sorted(ranked.items(), key=lambda kv: -kv[1])[:TOP_FEATURES]
            live.log_plot(
                "importance", [{"feature": k, "importance": round(v, 6)} for k, v in top], x="importance", y="feature",
                template="bar_horizontal_sorted", title=f"{name}: feature importance, last fold ({importance['kind']})",
            )
        (live_dir / "metrics.json").unlink(missing_ok=True)  # DVCLive's empty summary: the metrics are the files below
        write_json(detail, live_dir / DETAIL_FILE)
    write_json(headline_metrics(results["test"][1], results["val"][1]), headline_file(name))


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
    return [{"actual": CLASS_NAMES[i], "predicted": CLASS_NAMES[j], "count": int(counts[i, j])}
            for i in range(len(CLASS_NAMES)) for j in range(len(CLASS_NAMES))]


def _fmt(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def main() -> None:
    stage_main("evaluate", main_body, add_args)


if __name__ == "__main__":
    main()
