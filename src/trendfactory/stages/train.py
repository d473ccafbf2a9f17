"""Stage `train@<model>-<h>`: fit one registered model at one horizon in every walk-forward
fold (with every seed, for a stochastic model), and score each fold's validation and test
blocks with that fold's fits.

    python -m trendfactory.stages.train --model xgboost --horizon 5

Reads the window store data/windows/ (one store; each fold reads it through its own
train-fitted scaler), the model's own params section (``models.<name>``), ``seed`` and
``evaluate.seeds`` (and, for neural models, the shared ``train`` section). For fold k and seed
number s it fits with seed ``seed + s`` on the fold's train rows (validation rows for early
stopping only), then predicts the fold's val and test rows. A stochastic model (networks, the
dual tower, subsampling trees) gets ``evaluate.seeds`` fits per fold, a deterministic one a
single fit. Writes:

- models/<model>-h<h>/fold_XX/seed_YY/ -- each fit (safe formats);
- data/predictions/<model>-h<h>/{val,test}_h<h>.parquet -- every fit's predictions with ``fold``
  and ``seed`` columns: per seed, test is the out-of-sample series (folds' test blocks do not
  overlap);
- metrics/train/<model>-h<h>/ -- DVCLive: the last fold's first-seed learning curves, a
  per-fit summary. No timings: they change from run to run, and these outputs are hashed by DVC
  (fit times go to the log).

The fits are independent: they fan out as Ray tasks (trendfactory.parallel; ``parallel`` in
params.yaml: a local Ray using every core, or a cluster), each reserving the threads it runs on
(one torch thread per network, ``n_jobs`` for a tree library), so every fit gives the same numbers
whether it ran alone, beside others or on another node.
Everything is built in temp dirs and renamed into place at the end, so an interrupted run never
leaves half-written outputs; a neural fit keeps checkpoints in
.checkpoints/<model>/fold_XX/seed_YY/ meanwhile, and with ``train.resume`` an interrupted
one continues from its last epoch. A joint model (dual_tower) is trained once per fold and seed
for every horizon and writes each horizon's predictions.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.features.splits import fold_name
from trendfactory.io import atomic_dir, write_parquet
from trendfactory.models import Samples, create, get_model_class, model_config
from trendfactory.models.data import load_split
from trendfactory.models.base import FitContext, TrendModel
from trendfactory.models.registry import check_listed, check_tunable
from trendfactory.models.search import read_tuned, tuned_configs
from trendfactory.parallel import chdir_to, pin_threads, placement, run_tasks, task_resources
from trendfactory.params import Params, config_to_dict
from trendfactory.paths import CHECKPOINTS_DIR, MODELS_DIR, PREDICTIONS_DIR, TRAIN_LOGS_DIR, fitted_model_dir, model_dir, predictions_file, seed_name
from trendfactory.runtime import configure_logging, seed_everything
from trendfactory.stages.common import log, stage_main
from trendfactory.stages.store import add_args
from trendfactory.windows.reader import open_store

ROLES = ("val", "test")  # what each fold's model scores


def prediction_frame(model: TrendModel, samples: Samples, fold: int, seed_index: int = 0) -> pd.DataFrame:
    """The predictions data contract for ``samples``, plus label, ret (the realised forward
    return), the fold that made them and the seed number of the fit."""
    frame = model.predict(samples).to_frame(samples.keys(), samples.horizon)
    frame["label"] = samples.labels()
    frame["ret"] = samples.returns().astype(np.float64)
    frame["fold"] = np.int16(fold)
    frame["seed"] = np.int16(seed_index)
    return frame


@dataclass(frozen=True)
class Job:
    """One fit of a train stage: a model in fold ``fold`` with seed number ``seed_index`` (the
    fit's seed is ``params.seed + seed_index``). Everything a Ray task needs, picklable."""

    name: str  # the stage's item (for log lines)
    model: str
    config: Any
    train: Any
    horizon: int
    horizons: tuple[int, ...]
    fold: int
    seed_index: int
    seed: int
    out_dir: Path
    checkpoint_dir: Path | None
    threads: int  # CPU threads of the fit (TrendModel.threads): pinned, so it gives the same numbers wherever it runs
    uses_torch: bool
    root: Path  # the repository: a task on another worker or node resolves data/ and models/ from it


def run_job(job: Job) -> dict:
    """Fit one (fold, seed), save the model under ``out_dir/fold_XX/seed_YY`` and return its
    predictions (``preds[h][role]``) and a summary. Seeded from the job alone, so the result does
    not depend on which process or node runs it or what ran before."""
    chdir_to(job.root)
    configure_logging("train")  # a Ray worker starts without the stage's log format
    pin_threads(job.threads, torch_too=job.uses_torch)
    seed_everything(job.seed)
    train, val = (load_split(r, job.horizon, job.fold) for r in ("train", "val"))
    model = create(job.model, job.config, horizon=job.horizon, seed=job.seed, train=job.train)
    model.fit(train, val, FitContext(checkpoint_dir=job.checkpoint_dir))
    model.save(fitted_model_dir(job.out_dir, job.fold, job.seed_index))
    preds = {h: {role: prediction_frame(model, load_split(role, h, job.fold), job.fold, job.seed_index) for role in ROLES} for h in job.horizons}
    log.info("%s fold %d seed %d: fitted in %.1fs (best iteration %s)", job.name, job.fold, job.seed, model.fit_seconds_, model.best_iteration_)
    return {
        "preds": preds,
        "history": model.history_,
        "fit_seconds": model.fit_seconds_,
        "summary": {"fold": job.fold, "seed": job.seed, "best_iteration": model.best_iteration_, "n_train": len(train), "n_val": len(val)},
    }


def main_body(params: Params, args: argparse.Namespace) -> None:
    # Long on purpose: the stage's one transaction -- every output opened atomically in one ExitStack, the fits, then the writes.
    cls = get_model_class(args.model)
    check_listed(params.run, cls)
    train_config = params.train if cls.uses_trainer else None
    if cls.base_name:  # <model>_tuned: fold k's study's best values over the model's own sections
        check_tunable(params.run, cls.base_name, f"--model {cls.name}")
        if args.horizon is None:
            raise TrendfactoryError(f"--horizon: {cls.name} is tuned and trained per horizon; give one of label.horizons")
    store = open_store()
    n_folds = store.n_folds
    config = model_config(params, cls.base_name or cls.name)
    configs = [(config, train_config)] * n_folds  # per fold: (model config, train config)
    tuned: list[dict] = []  # per fold, the values its study chose (a tuned variant only)
    if cls.base_name:
        tuned = read_tuned(cls.base_name, args.horizon, n_folds)
        configs = tuned_configs(cls.base_name, args.horizon, tuned, config, train_config)
    if cls.joint:  # one fit per fold for every horizon of the store; `horizon` is where it starts
        horizons = list(store.horizons)
        horizon = args.horizon if args.horizon is not None else horizons[0]
    elif args.horizon is None:
        raise TrendfactoryError(f"--horizon: {cls.name} is trained per horizon; give one of label.horizons")
    else:
        horizon, horizons = args.horizon, [args.horizon]
    n_seeds = params.evaluate.seeds if cls.stochastic else 1
    name = model_dir(cls.name, horizon, cls.joint).name
    where = placement(params.parallel.address, params.parallel.cpus)

    from dvclive import Live  # after the cheap checks: importing dvclive imports dvc

    t_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        live_dir = stack.enter_context(atomic_dir(TRAIN_LOGS_DIR / name))
        out_dir = stack.enter_context(atomic_dir(MODELS_DIR / name))
        pred_dir = stack.enter_context(atomic_dir(PREDICTIONS_DIR / name))
        live = stack.enter_context(Live(str(live_dir), dvcyaml=False, save_dvc_exp=False))
        logged = {"model": f"{cls.family}:{cls.name}", "horizon": "all" if cls.joint else horizon, "seed": params.seed, "seeds": n_seeds, **config_to_dict(config)}
        if cls.uses_trainer:
            logged["train"] = config_to_dict(train_config)
        if cls.base_name:  # what each fold's study chose over the params above
            logged["tuned"] = {fold_name(k): values for k, values in enumerate(tuned)}
        live.log_params(logged)
        for k in range(n_folds):
            train, val = (load_split(r, horizon, k) for r in ("train", "val"))  # sizes, and errors before any fit
            f = store.meta["folds"][k]
            log.info(
                "%s fold %d of 0..%d (test %s..%s): %s train / %s val samples, %d features",
                name,
                k,
                n_folds - 1,
                f["test_start"],
                f["test_end"] or "end",
                f"{len(train):,}",
                f"{len(val):,}",
                train.n_features,
            )
        root = Path.cwd().resolve()
        jobs = [
            Job(
                name,
                cls.name,
                *configs[k],
                horizon,
                tuple(horizons),
                k,
                s,
                params.seed + s,
                root / out_dir,
                root / CHECKPOINTS_DIR / name / fold_name(k) / seed_name(s) if cls.uses_trainer else None,
                cls.threads(configs[k][0]),
                cls.uses_trainer,
                root,
            )
            for k in range(n_folds)
            for s in range(n_seeds)
        ]
        log.info("%s: %d fits (%d folds x %d seeds)", name, len(jobs), n_folds, n_seeds)
        device = params.train.device if cls.uses_trainer else None
        where, cpus, gpu_share = task_resources(where, max(job.threads for job in jobs), device, params.parallel.fits_per_gpu)
        results = run_tasks(run_job, jobs, where, cpus_per_task=cpus, gpus_per_task=gpu_share, what="fit")
        # The last fold's first seed (the model closest to today) gives the DVCLive curves.
        _log_history(live, results[(n_folds - 1) * n_seeds]["history"])
        live.summary["folds"] = [r["summary"] for r in results]
        for h in horizons:
            for role in ROLES:
                frame = pd.concat([r["preds"][h][role] for r in results], ignore_index=True)
                write_parquet(frame, pred_dir / predictions_file(cls.name, h, role, cls.joint).name)
        fit_seconds = sum(r["fit_seconds"] for r in results)
    if cls.uses_trainer:
        shutil.rmtree(CHECKPOINTS_DIR / name, ignore_errors=True)  # finished: the best weights are in models/
    log.info("%s: %d fits (%.0fs of fitting) done in %.1fs -> %s", name, len(jobs), fit_seconds, time.perf_counter() - t_all, MODELS_DIR / name)


def _log_history(live, history: dict[str, list[float]]) -> None:
    """A fit's curves, logged after the fact, one DVCLive step per epoch/iteration (train_loss -> train/loss)."""
    curves = {k.replace("_", "/", 1): v for k, v in history.items() if v}
    for step in range(max((len(v) for v in curves.values()), default=0)):
        for key, values in curves.items():
            if step < len(values):
                live.log_metric(key, values[step])
        live.next_step()


def main() -> None:
    stage_main("train", main_body, add_args)


if __name__ == "__main__":
    main()
