"""Stage `train@<model>-<h>`: fit one registered model at one horizon in every walk-forward
fold, and score each fold's validation and test blocks with that fold's model.

    python -m trendfactory.stages.train --model xgboost --horizon 5

Reads the window store data/windows/ (one store; each fold reads it through its own
train-fitted scaler) and the model's own params section (``models.<name>``) plus ``seed``
(and, for neural models, the shared ``train`` section). For fold k it fits on the fold's
train rows (validation rows for early stopping only), then predicts the fold's val and test
rows. Writes:

- models/<model>-h<h>/fold_XX/ -- each fold's fitted model (safe formats);
- data/predictions/<model>-h<h>/{val,test}_h<h>.parquet -- every fold's predictions with a ``fold``
  column: test is the out-of-sample series (folds' test blocks do not overlap);
- metrics/train/<model>-h<h>/ -- DVCLive: the last fold's learning curves, per-fold summary.

Everything is built in temp dirs and renamed into place at the end, so an interrupted run never
leaves half-written outputs; a neural fit keeps checkpoints in .checkpoints/<model>-h<h>/fold_XX/
meanwhile, and with ``train.resume`` an interrupted one continues from its last epoch.
A joint model (dual_tower) is trained once per fold for every horizon and writes each
horizon's predictions.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time

import numpy as np
import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.features.splits import fold_name
from trendfactory.io import atomic_dir, write_parquet
from trendfactory.models import Samples, create, get_model_class
from trendfactory.models.base import FitContext, TrendModel
from trendfactory.params import Params, config_to_dict
from trendfactory.paths import CHECKPOINTS_DIR, MODELS_DIR, PREDICTIONS_DIR, TRAIN_LOGS_DIR, WINDOWS_DIR, model_dir, predictions_file
from trendfactory.stages.common import log, stage_main
from trendfactory.windows.reader import WindowSplit

ROLES = ("val", "test")  # what each fold's model scores


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see `trendfactory models`)")
    parser.add_argument(
        "--horizon", type=int, default=None,
        help="label horizon in bars (one of label.horizons); models trained for every horizon jointly (dual_tower) take none",
    )


def open_store() -> WindowSplit:
    """The unscaled walk-forward window store, or a one-line error naming the fix."""
    try:
        store = WindowSplit.open(WINDOWS_DIR)
    except (FileNotFoundError, ValueError) as exc:
        raise TrendfactoryError(f"{exc}") from None
    if store.n_folds == 0:
        raise TrendfactoryError(f"{WINDOWS_DIR}: a window store without folds; rerun `dvc repro window`")
    return store


def load_split(role: str, horizon: int, fold: int) -> Samples:
    """Labelled samples of one fold's ``role`` ('train' | 'val' | 'test'), or a one-line error."""
    try:
        return Samples.open(WINDOWS_DIR, horizon, fold, role)
    except (FileNotFoundError, ValueError) as exc:
        raise TrendfactoryError(f"{exc}") from None
    except KeyError:
        have = WindowSplit.open(WINDOWS_DIR).horizons
        raise TrendfactoryError(f"--horizon {horizon}: the window store {WINDOWS_DIR} has horizons {have}; use one of them or add it to label.horizons") from None


def prediction_frame(model: TrendModel, samples: Samples, fold: int) -> pd.DataFrame:
    """The predictions data contract for ``samples``, plus label, ret (the realised forward
    return) and the fold that made them."""
    frame = model.predict(samples).to_frame(samples.keys(), samples.horizon)
    frame["label"] = samples.labels()
    frame["ret"] = samples.returns().astype(np.float64)
    frame["fold"] = np.int16(fold)
    return frame


def main_body(params: Params, args: argparse.Namespace) -> None:
    cls = get_model_class(args.model)
    config = getattr(params.models, cls.name)
    store = open_store()
    if cls.joint:  # one fit per fold for every horizon of the store; `horizon` is where it starts
        horizons = list(store.horizons)
        horizon = args.horizon if args.horizon is not None else horizons[0]
    elif args.horizon is None:
        raise TrendfactoryError(f"--horizon: {cls.name} is trained per horizon; give one of label.horizons")
    else:
        horizon, horizons = args.horizon, [args.horizon]
    n_folds = store.n_folds
    name = model_dir(cls.name, horizon, cls.joint).name

    from dvclive import Live  # after the cheap checks: importing dvclive imports dvc

    preds: dict[int, dict[str, list[pd.DataFrame]]] = {h: {r: [] for r in ROLES} for h in horizons}
    summary: list[dict] = []
    t_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        live_dir = stack.enter_context(atomic_dir(TRAIN_LOGS_DIR / name))
        out_dir = stack.enter_context(atomic_dir(MODELS_DIR / name))
        pred_dir = stack.enter_context(atomic_dir(PREDICTIONS_DIR / name))
        live = stack.enter_context(Live(str(live_dir), dvcyaml=False, save_dvc_exp=False))
        logged = {"model": f"{cls.family}:{cls.name}", "horizon": "all" if cls.joint else horizon, "seed": params.seed, **config_to_dict(config)}
        if cls.uses_trainer:
            logged["train"] = config_to_dict(params.train)
        live.log_params(logged)
        for k in range(n_folds):
            last = k == n_folds - 1
            train, val = (load_split(r, horizon, k) for r in ("train", "val"))
            f = store.meta["folds"][k]
            log.info("%s fold %d of 0..%d (test %s..%s): %s train / %s val samples, %d features", name, k, n_folds - 1,
                     f["test_start"], f["test_end"] or "end", f"{len(train):,}", f"{len(val):,}", train.n_features)
            model = create(cls.name, config, horizon=horizon, seed=params.seed, train=params.train)
            checkpoints = CHECKPOINTS_DIR / name / fold_name(k) if cls.uses_trainer else None
            # The last fold's curves (the model closest to today) go to DVCLive step by step.
            on_epoch = _Logger(live) if last else None
            model.fit(train, val, FitContext(on_epoch=on_epoch, checkpoint_dir=checkpoints))
            if on_epoch is not None and on_epoch.steps == 0:  # models that do not report live
                _log_history(live, model)
            model.save(out_dir / fold_name(k))
            for h in horizons:
                for role in ROLES:
                    preds[h][role].append(prediction_frame(model, load_split(role, h, k), k))
            summary.append({"fold": k, "fit_seconds": round(model.fit_seconds_, 3), "best_iteration": model.best_iteration_,
                            "n_train": len(train), "n_val": len(val)})
            log.info("%s fold %d: fitted in %.1fs (best iteration %s)", name, k, model.fit_seconds_, model.best_iteration_)
        live.summary["fit_seconds"] = round(sum(s["fit_seconds"] for s in summary), 3)
        live.summary["folds"] = summary
        for h in horizons:
            for role in ROLES:
                write_parquet(pd.concat(preds[h][role], ignore_index=True), pred_dir / predictions_file(cls.name, h, role, cls.joint).name)
    if cls.uses_trainer:
        shutil.rmtree(CHECKPOINTS_DIR / name, ignore_errors=True)  # finished: the best weights are in models/
    log.info("%s: %d folds fitted in %.1fs -> %s", name, n_folds, time.perf_counter() - t_all, MODELS_DIR / name)


class _Logger:
    """FitContext.on_epoch for DVCLive: one step per epoch, counted."""

    def __init__(self, live) -> None:
        self.live, self.steps = live, 0

    def __call__(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.live.log_metric(key, value)
        self.live.next_step()
        self.steps += 1


def _log_history(live, model: TrendModel) -> None:
    """Curves of models that do not report live, logged after the fact (train_loss -> train/loss)."""
    curves = {k.replace("_", "/", 1): v for k, v in model.history_.items() if v}
    for step in range(max((len(v) for v in curves.values()), default=0)):
        for key, values in curves.items():
            if step < len(values):
                live.log_metric(key, values[step])
        live.next_step()


def main() -> None:
    stage_main("train", main_body, add_args)


if __name__ == "__main__":
    main()
