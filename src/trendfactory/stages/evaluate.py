"""Stage `evaluate@<model>-<h>`: score val and test with one trained model and measure it.

    python -m trendfactory.stages.evaluate --model xgboost --horizon 5

Writes predictions to data/predictions/<model>-h<h>/{val,test}.parquet, and a DVCLive dir
metrics/eval/<model>-h<h>/ with metrics.json (for val and test: classification, IC and
trading metrics as DESIGN.md defines them), the confusion matrices (DVCLive's sklearn plot),
the long/short book's cumulative return against equal-weight buy-and-hold, and feature
importance (the model's own, or permutation importance per feature group on val).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from trendfactory.evaluation import plots
from trendfactory.evaluation.importance import context_projection, feature_importance
from trendfactory.evaluation.metrics import classification_metrics, ic_metrics, long_short_book, next_bar_returns, trading_metrics
from trendfactory.io import atomic_dir, read_json, write_parquet
from trendfactory.models import Samples, TrendModel, get_model_class
from trendfactory.params import Params
from trendfactory.errors import TrendfactoryError
from trendfactory.paths import EVAL_DIR, FEATURES_DIR, PREDICTIONS_DIR, RAW_DIR, item_id, model_dir
from trendfactory.stages.common import log, stage_main
from trendfactory.stages.train import add_args, load_split

SPLITS = ("val", "test")
TOP_FEATURES = 25  # features shown in the importance plot


def evaluate_split(model: TrendModel, samples: Samples, next_returns: pd.DataFrame, entry_lag: int, params: Params):
    """(predictions frame, metrics dict, daily book) of one split."""
    p = model.predict(samples)
    frame = p.to_frame(samples.keys(), samples.horizon)
    frame["label"] = samples.labels()
    frame["ret"] = samples.returns().astype(np.float64)
    book = long_short_book(frame, next_returns, samples.horizon, entry_lag, params.evaluate.cost_bps)
    metrics = {
        **classification_metrics(frame["label"].to_numpy(), p.pred, p.proba),
        **ic_metrics(frame, samples.horizon),
        **trading_metrics(book, params.evaluate.bars_per_year),
    }
    return frame, metrics, book


def main_body(params: Params, args: argparse.Namespace) -> None:
    cls = get_model_class(args.model)
    if args.horizon is None:
        raise TrendfactoryError("--horizon: evaluate scores one horizon at a time; give one of label.horizons")
    name = item_id(cls.name, args.horizon)
    model = TrendModel.load(model_dir(cls.name, args.horizon, cls.joint))
    schema = read_json(FEATURES_DIR / "schema.json")
    entry_lag = int(schema["label"]["entry_lag"])
    bars = pd.read_parquet(RAW_DIR / "bars.parquet", columns=["symbol", "datetime", "close"])
    next_returns = next_bar_returns(bars)

    from dvclive import Live

    results = {}
    for split in SPLITS:
        samples = load_split(split, args.horizon)
        results[split] = (samples, *evaluate_split(model, samples, next_returns, entry_lag, params))
        m = results[split][2]
        log.info(
            "%s %s: balanced acc %.4f, macro F1 %.4f, IC %s (t %s), Sharpe %s after %g bp",
            name, split, m["balanced_accuracy"], m["macro_f1"], _fmt(m["ic"]), _fmt(m["ic_tstat"], 2), _fmt(m["sharpe"], 2), params.evaluate.cost_bps,
        )
    importance = feature_importance(model, results["val"][0], schema["feature_groups"], params.seed)

    with atomic_dir(EVAL_DIR / name) as live_dir, atomic_dir(PREDICTIONS_DIR / name) as pred_dir:
        with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
            for split, (_, frame, metrics, book) in results.items():
                live.summary[split] = metrics
                live.log_sklearn_plot(
                    "confusion_matrix", frame["label"].to_numpy(), frame["pred"].to_numpy(),
                    name=f"confusion_matrix_{split}", title=f"{name} {split}: true vs predicted class",
                )
                fig = plots.equity_figure({model.name: book}, {model.name: model.family}, f"{name}, {split}")
                live.log_image(f"equity_{split}.png", fig)
                plots.close(fig)
            projection = context_projection(model, results["test"][0])
            if projection is not None:
                points, regime, feature = projection
                fig = plots.embedding_figure(points, regime, f"{name}: context embeddings of the test dates", f"{feature} (trailing market log return)")
                live.log_image("context_embedding.png", fig)
                plots.close(fig)
            ranked = importance["features"] or importance["groups"]
            top = sorted(ranked.items(), key=lambda kv: -kv[1])[:TOP_FEATURES]
            live.log_plot(
                "importance", [{"feature": k, "importance": round(v, 6)} for k, v in top], x="importance", y="feature",
                template="bar_horizontal_sorted", title=f"{name}: feature importance ({importance['kind']})",
            )
        for split, (_, frame, _, _) in results.items():
            write_parquet(frame, pred_dir / f"{split}.parquet")


def _fmt(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def main() -> None:
    stage_main("evaluate", main_body, add_args)


if __name__ == "__main__":
    main()
