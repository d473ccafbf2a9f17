"""Stage `train@<model>-<h>`: fit one registered model at one horizon on the window store.

    python -m trendfactory.stages.train --model xgboost --horizon 5

Reads data/windows/{train,val} and the model's own params section (``models.<name>``) plus
``seed`` (and, for neural models, the shared ``train`` section); writes the fitted model to
models/<model>-h<h>/ and its DVCLive log (params, per-iteration or per-epoch train/val loss,
best iteration, fit seconds) to metrics/train/<model>-h<h>/. Both are built in temp dirs and
renamed into place at the end, so an interrupted fit never leaves a half-written model behind;
a neural fit keeps checkpoints in .checkpoints/<model>-h<h>/ meanwhile, and with
``train.resume`` an interrupted one continues from its last epoch.
"""

from __future__ import annotations

import argparse
import shutil

from trendfactory.errors import TrendfactoryError
from trendfactory.io import atomic_dir
from trendfactory.models import Samples, create, get_model_class
from trendfactory.models.base import FitContext
from trendfactory.params import Params, config_to_dict
from trendfactory.paths import CHECKPOINTS_DIR, MODELS_DIR, TRAIN_LOGS_DIR, WINDOWS_DIR, model_dir
from trendfactory.windows.reader import WindowSplit
from trendfactory.stages.common import log, stage_main


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see `trendfactory models`)")
    parser.add_argument(
        "--horizon", type=int, default=None,
        help="label horizon in bars (one of label.horizons); models trained for every horizon jointly (dual_tower) take none",
    )


def main_body(params: Params, args: argparse.Namespace) -> None:
    cls = get_model_class(args.model)
    config = getattr(params.models, cls.name)
    horizon = args.horizon
    if cls.joint:  # one fit for every horizon of the window store; `horizon` is where it starts
        horizon = horizon if horizon is not None else WindowSplit.open(WINDOWS_DIR / "train").horizons[0]
    elif horizon is None:
        raise TrendfactoryError(f"--horizon: {cls.name} is trained per horizon; give one of label.horizons")
    train, val = (load_split(s, horizon) for s in ("train", "val"))
    log.info("%s:%s h%s: %s train / %s val samples, %d features", cls.family, cls.name, "all" if cls.joint else horizon, f"{len(train):,}", f"{len(val):,}", train.n_features)
    model = create(cls.name, config, horizon=horizon, seed=params.seed, train=params.train)

    from dvclive import Live  # after the cheap checks: importing dvclive imports dvc

    name = model_dir(cls.name, horizon, cls.joint).name
    checkpoints = CHECKPOINTS_DIR / name if cls.uses_trainer else None
    with atomic_dir(TRAIN_LOGS_DIR / name) as live_dir, atomic_dir(MODELS_DIR / name) as out_dir:
        with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
            logged = {"params": {"model": f"{cls.family}:{cls.name}", "horizon": "all" if cls.joint else horizon, "seed": params.seed, **config_to_dict(config)}}
            if cls.uses_trainer:
                logged["params"]["train"] = config_to_dict(params.train)
            live.log_params(logged["params"])
            steps = 0

            def log_step(metrics: dict[str, float]) -> None:
                nonlocal steps
                for key, value in metrics.items():
                    live.log_metric(key, value)
                live.next_step()
                steps += 1

            model.fit(train, val, FitContext(on_epoch=log_step, checkpoint_dir=checkpoints))
            if steps == 0:  # models that do not report live: their curves after the fact
                curves = {k.replace("_", "/", 1): v for k, v in model.history_.items() if v}  # train_loss -> train/loss
                for step in range(max((len(v) for v in curves.values()), default=0)):
                    log_step({k: v[step] for k, v in curves.items() if step < len(v)})
            live.summary["fit_seconds"] = round(model.fit_seconds_, 3)
            live.summary["best_iteration"] = model.best_iteration_
            live.summary["n_train"], live.summary["n_val"] = len(train), len(val)
        model.save(out_dir)
    if checkpoints is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)  # finished: the best weights are in models/
    log.info("%s: fitted in %.1fs -> %s", name, model.fit_seconds_, MODELS_DIR / name)


def load_split(split: str, horizon: int) -> Samples:
    """Labelled samples of one split, or a one-line error naming the fix."""
    directory = WINDOWS_DIR / split
    try:
        samples = Samples.open(directory, horizon)
    except FileNotFoundError as exc:
        raise TrendfactoryError(f"{exc}") from None
    except KeyError:
        have = WindowSplit.open(directory).horizons
        raise TrendfactoryError(f"--horizon {horizon}: the window store {directory} has horizons {have}; use one of them or add it to label.horizons") from None
    return samples


def main() -> None:
    stage_main("train", main_body, add_args)


if __name__ == "__main__":
    main()
