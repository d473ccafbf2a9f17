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

import pandas as pd

from trendfactory.evaluation import plots
from trendfactory.evaluation.importance import context_projection, feature_importance
from trendfactory.evaluation.items import DETAIL_FILE, by_period, confusion_counts, headline_file, headline_metrics, read_predictions, split_metrics
from trendfactory.evaluation.metrics import next_bar_returns
from trendfactory.evaluation.seeds import mean_daily, mean_metrics, seed_frames
from trendfactory.io import atomic_dir, read_json, write_json
from trendfactory.models import TrendModel, get_model_class
from trendfactory.models.data import load_split
from trendfactory.params import Params
from trendfactory.errors import TrendfactoryError
from trendfactory.paths import EVAL_DIR, FEATURES_DIR, RAW_DIR, fitted_model_dir, item_id, model_dir
from trendfactory.stages.common import log, stage_main
from trendfactory.stages.store import add_args
from trendfactory.windows.reader import open_store

SPLITS = ("val", "test")
TOP_FEATURES = 25  # features shown in the importance plot


def main_body(params: Params, args: argparse.Namespace) -> None:
    # Long on purpose: the stage's steps in order (predictions, metrics per seed, book, plots, files); each is a call.
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
            name,
            split,
            frame["fold"].nunique(),
            len(per_seed),
            "s" if len(per_seed) > 1 else "",
            f"{len(frame):,}",
            metrics["balanced_accuracy"],
            metrics["macro_f1"],
            _fmt(metrics["rank_ic"]),
            f" ± {spread[split]['rank_ic']:.4f}" if spread[split].get("rank_ic") is not None else "",
            _fmt(metrics["rank_ic_t"], 2),
            _fmt(metrics["sharpe"], 2),
            params.evaluate.cost_bps,
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
                live.log_plot(
                    f"confusion_{split}",
                    confusion_counts(first["label"].to_numpy(), first["pred"].to_numpy()),
                    x="actual",
                    y="predicted",
                    template="confusion_counts",
                    title=f"{name} {split}: true vs predicted class",
                )
            fig = plots.equity_figure({model.name: results["test"][2]}, {model.name: model.family}, f"{name}, out of sample (all folds, mean of {n} seed{'s' if n > 1 else ''})")
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
                "importance",
                [{"feature": k, "importance": round(v, 6)} for k, v in top],
                x="importance",
                y="feature",
                template="bar_horizontal_sorted",
                title=f"{name}: feature importance, last fold ({importance['kind']})",
            )
        (live_dir / "metrics.json").unlink(missing_ok=True)  # DVCLive's empty summary: the metrics are the files below
        write_json(detail, live_dir / DETAIL_FILE)
    write_json(headline_metrics(results["test"][1], results["val"][1]), headline_file(name))


def _fmt(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def main() -> None:
    stage_main("evaluate", main_body, add_args)


if __name__ == "__main__":
    main()
