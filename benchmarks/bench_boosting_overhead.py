"""Training XGBoost and LightGBM through the factory vs calling the library directly.

Target (issue 3): the factory costs <= 5% more time than the library on the same arrays and
params. Both sides run the same boosting rounds with the same early stopping, the same
train + validation evaluation every round and the same progress printing; the factory side
also pays for everything it adds: reading the tabular rows out of the window store, class
weights, the history it records and the checks in ``fit``.

Runs on the default pipeline's window store (run `dvc repro window` first):

    .venv/bin/python benchmarks/bench_boosting_overhead.py [--horizon 5] [--repeats 5]

Timings alternate factory / direct and report the median of each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from pathlib import Path

from trendfactory.models import Samples, create, model_config
from trendfactory.models.zoo.lightgbm import lgb_params
from trendfactory.models.zoo.xgboost import xgb_params
from trendfactory.params import load_params

WINDOWS = Path("data/windows")


def direct_xgboost(cfg, seed, X, y, Xv, yv, names):
    import xgboost as xgb

    dtrain = xgb.DMatrix(X, label=y, feature_names=names)
    dval = xgb.DMatrix(Xv, label=yv, feature_names=names)
    evals: dict = {}
    return xgb.train(
        xgb_params(cfg, seed, "cpu"),
        dtrain,
        num_boost_round=cfg.n_estimators,
        evals=[(dtrain, "train"), (dval, "val")],
        early_stopping_rounds=cfg.early_stopping_rounds,
        evals_result=evals,
        verbose_eval=100,
    ).best_iteration


def direct_lightgbm(cfg, seed, X, y, Xv, yv, names):
    import lightgbm as lgb

    dtrain = lgb.Dataset(X, label=y, feature_name=names, free_raw_data=True)
    dval = lgb.Dataset(Xv, label=yv, reference=dtrain)
    evals: dict = {}
    booster = lgb.train(
        lgb_params(cfg, seed, "cpu"),
        dtrain,
        num_boost_round=cfg.n_estimators,
        valid_sets=[dtrain, dval],
        valid_names=["train", "val"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False), lgb.record_evaluation(evals), lgb.log_evaluation(100)],
    )
    return booster.best_iteration - 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    params = load_params()
    train, val = Samples.open(WINDOWS / "train", args.horizon), Samples.open(WINDOWS / "val", args.horizon)
    print(f"window store: {len(train):,} train / {len(val):,} val samples x {train.n_features} features, h={args.horizon}")

    rows = []
    for name, direct in (("xgboost", direct_xgboost), ("lightgbm", direct_lightgbm)):
        cfg = model_config(params, name)
        # the direct side gets its arrays for free: extracted once, outside the timing
        X, y = train.tabular(cfg.lags), train.classes()
        Xv, yv = val.tabular(cfg.lags), val.classes()
        names = train.tabular_feature_names(cfg.lags)
        t_factory, t_direct = [], []
        for _ in range(args.repeats):
            with contextlib.redirect_stdout(io.StringIO()):
                t0 = time.perf_counter()
                model = create(name, cfg, horizon=args.horizon, seed=params.seed).fit(train, val)
                t_factory.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                best = direct(cfg, params.seed, X, y, Xv, yv, names)
                t_direct.append(time.perf_counter() - t0)
            assert best == model.best_iteration_, f"{name}: factory and direct runs differ ({model.best_iteration_} vs {best})"
        f, d = statistics.median(t_factory), statistics.median(t_direct)
        rows.append((name, model.best_iteration_ + 1, f, d, f / d - 1))

    print(f"\n{'model':10s} {'rounds':>7s} {'factory s':>10s} {'direct s':>9s} {'overhead':>9s}   (median of {args.repeats}; target <= +5%)")
    for name, rounds, f, d, o in rows:
        print(f"{name:10s} {rounds:7d} {f:10.2f} {d:9.2f} {o:+9.1%}   {'PASS' if o <= 0.05 else 'FAIL'}")


if __name__ == "__main__":
    main()
