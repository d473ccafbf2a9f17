"""Stage `compare`: every model × horizon in one table, one page and a few plots.

Reads metrics/eval/<model>-h<h>/metrics.json, the test predictions and each model's fit time
for the items of (``run.models`` + ``run.neural_models`` + ``run.joint_models``) × ``label.horizons``; writes metrics/compare.json (one row per
item, git-tracked so `dvc metrics diff` shows it), metrics/comparison.md and plots/compare/.
"""

from __future__ import annotations

import argparse

import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.evaluation import plots
from trendfactory.evaluation.compare import Item, compare_rows, comparison_markdown, rows_of_horizon, score_correlations
from trendfactory.evaluation.metrics import long_short_book, next_bar_returns
from trendfactory.io import atomic_dir, atomic_path, read_json, write_json
from trendfactory.models import get_model_class
from trendfactory.models.registry import train_stage
from trendfactory.models.base import METADATA_FILE
from trendfactory.params import Params
from trendfactory.paths import (
    COMPARE_JSON,
    COMPARE_PLOTS_DIR,
    COMPARISON_MD,
    EVAL_DIR,
    FEATURES_DIR,
    PREDICTIONS_DIR,
    RAW_DIR,
    item_id,
    model_dir,
)
from trendfactory.stages.common import log, stage_main


def _read_item(model: str, horizon: int) -> Item:
    name = item_id(model, horizon)
    metrics_path = EVAL_DIR / name / "metrics.json"
    if not metrics_path.is_file():
        raise TrendfactoryError(f"{metrics_path}: missing; run `dvc repro {train_stage(model, horizon).replace('train', 'evaluate', 1)}` first")
    cls = get_model_class(model)
    fit = read_json(model_dir(model, horizon, cls.joint) / METADATA_FILE).get("fit_seconds")
    return Item(model=model, family=cls.family, horizon=horizon, metrics=read_json(metrics_path), fit_seconds=fit)


def main_body(params: Params, args: argparse.Namespace) -> None:
    horizons = list(params.label.horizons)
    models = [*params.run.models, *params.run.neural_models, *params.run.joint_models]
    items = [_read_item(m, h) for h in horizons for m in models]
    rows = compare_rows(items)
    entry_lag = int(read_json(FEATURES_DIR / "schema.json")["label"]["entry_lag"])
    bars = pd.read_parquet(RAW_DIR / "bars.parquet", columns=["symbol", "datetime", "close"])
    next_returns = next_bar_returns(bars)
    families = {m: get_model_class(m).family for m in models}

    correlations, books = {}, {}
    for h in horizons:
        preds = {m: pd.read_parquet(PREDICTIONS_DIR / item_id(m, h) / "test.parquet") for m in models}
        correlations[h] = score_correlations(preds)
        books[h] = {m: long_short_book(f, next_returns, h, entry_lag, params.evaluate.cost_bps) for m, f in preds.items()}

    md = comparison_markdown(rows, correlations, params.evaluate.cost_bps)
    with atomic_dir(COMPARE_PLOTS_DIR) as plot_dir:
        for h in horizons:
            plots.metric_bars(rows_of_horizon(rows, h), h, plot_dir / f"metrics_h{h}.png")
            plots.equity_curves(books[h], families, h, plot_dir / f"equity_h{h}.png")
            plots.correlation_heatmap(correlations[h], h, plot_dir / f"score_correlation_h{h}.png")
        write_json(rows, COMPARE_JSON)
        with atomic_path(COMPARISON_MD) as tmp:
            tmp.write_text(md)
    log.info("compared %d items; see %s", len(rows), COMPARISON_MD)
    for line in md.splitlines()[2:2 + len(horizons)]:
        log.info("%s", line.removeprefix("- ").replace("**", ""))


def main() -> None:
    stage_main("compare", main_body)


if __name__ == "__main__":
    main()
