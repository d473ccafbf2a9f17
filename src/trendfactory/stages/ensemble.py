"""Stage `ensemble@<h>`: the rank-average and stacked ensembles of one horizon, from the models'
walk-forward predictions (see :mod:`trendfactory.evaluation.ensemble`).

    python -m trendfactory.stages.ensemble --horizon 5

Reads every non-baseline model's predictions in the run lists (a model fitted with several
seeds enters with its seeds' averaged predictions); writes each ensemble's test
predictions to data/ensembles/<ensemble>-h<h>/test_h<h>.parquet, its headline numbers to
metrics/eval/<ensemble>-h<h>.json (beside the models', the same keys) and all its out-of-sample
metrics (the same as evaluate's for test, plus per year and per fold) to
metrics/ensembles/<ensemble>-h<h>/detail.json.
"""

from __future__ import annotations

import argparse

import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.evaluation.ensemble import MIN_MEMBERS, Member, build_ensembles, ensemble_members
from trendfactory.evaluation.metrics import next_bar_returns
from trendfactory.io import atomic_dir, read_json, write_json, write_parquet
from trendfactory.params import Params
from trendfactory.paths import ENSEMBLE_EVAL_DIR, ENSEMBLE_PREDICTIONS_DIR, FEATURES_DIR, RAW_DIR, item_id
from trendfactory.stages.common import log, stage_main
from trendfactory.evaluation.items import DETAIL_FILE, by_period, headline_file, headline_metrics, read_predictions, split_metrics


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--horizon", type=int, required=True, help="label horizon in bars (one of label.horizons)")


def main_body(params: Params, args: argparse.Namespace) -> None:
    h = args.horizon
    models = ensemble_members(params)
    if not models:
        raise TrendfactoryError(f"ensemble@{h}: needs at least {MIN_MEMBERS} non-baseline models in run.models, run.neural_models and run.joint_models together; add one")
    schema = read_json(FEATURES_DIR / "schema.json")
    folds = schema["split"]["folds"]
    entry_lag = int(schema["label"]["entry_lag"])
    members = [Member(m, read_predictions(m, h, "val", seed_mean=True), read_predictions(m, h, "test", seed_mean=True)) for m in models]
    bars = pd.read_parquet(RAW_DIR / "bars.parquet", columns=["symbol", "datetime", "close"])
    next_returns = next_bar_returns(bars)
    k = min(params.ensemble.top_k, len(members))
    built = build_ensembles(members, folds, k, params.ensemble.ridge_alpha, entry_lag, h, next_returns.index)
    for name, frame in built.items():
        item = item_id(name, h)
        metrics, book = split_metrics(frame, h, next_returns, entry_lag, params)
        summary = {
            "test": metrics,
            "test_by_year": by_period(frame, book, frame["datetime"].dt.year, params.evaluate.bars_per_year),
            "test_by_fold": by_period(frame, book, frame["fold"], params.evaluate.bars_per_year),
            "members_by_fold": {str(f): m for f, m in frame.groupby("fold")["members"].first().items()},
        }
        with atomic_dir(ENSEMBLE_PREDICTIONS_DIR / item) as out:
            write_parquet(frame, out / f"test_h{h}.parquet")
        with atomic_dir(ENSEMBLE_EVAL_DIR / item) as out:
            write_json(summary, out / DETAIL_FILE)
        write_json(headline_metrics(metrics), headline_file(item))
        log.info(
            "%s: Rank IC %+.4f (t %+.2f), Sharpe %+.2f net over %d folds",
            item,
            metrics["rank_ic"] or float("nan"),
            metrics["rank_ic_t"] or float("nan"),
            metrics["sharpe"] or float("nan"),
            frame["fold"].nunique(),
        )


def main() -> None:
    stage_main("ensemble", main_body, add_args)


if __name__ == "__main__":
    main()
