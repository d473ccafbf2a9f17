"""Stage `train@<model>-<h>`: fit one registered model at one horizon on the window store.

    python -m trendfactory.stages.train --model xgboost --horizon 5

Reads data/windows/{train,val} and the model's own params section (``models.<name>``) plus
``seed``; writes the fitted model to models/<model>-h<h>/ and its DVCLive log (params,
per-iteration train/val loss, best iteration, fit seconds) to metrics/train/<model>-h<h>/.
Both are built in temp dirs and renamed into place at the end, so an interrupted fit never
leaves a half-written model behind.
"""

from __future__ import annotations

import argparse

from trendfactory.errors import TrendfactoryError
from trendfactory.io import atomic_dir
from trendfactory.models import Samples, create, get_model_class
from trendfactory.params import Params, config_to_dict
from trendfactory.paths import MODELS_DIR, TRAIN_LOGS_DIR, WINDOWS_DIR, item_id
from trendfactory.stages.common import log, stage_main


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see `trendfactory models`)")
    parser.add_argument("--horizon", type=int, required=True, help="label horizon in bars (one of label.horizons)")


def main_body(params: Params, args: argparse.Namespace) -> None:
    cls = get_model_class(args.model)
    config = getattr(params.models, cls.name)
    train, val = (load_split(s, args.horizon) for s in ("train", "val"))
    log.info("%s:%s h%d: %s train / %s val samples, %d features", cls.family, cls.name, args.horizon, f"{len(train):,}", f"{len(val):,}", train.n_features)
    model = create(cls.name, config, horizon=args.horizon, seed=params.seed)

    from dvclive import Live  # after the cheap checks: importing dvclive imports dvc

    name = item_id(cls.name, args.horizon)
    with atomic_dir(TRAIN_LOGS_DIR / name) as live_dir, atomic_dir(MODELS_DIR / name) as model_dir:
        with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
            live.log_params({"model": f"{cls.family}:{cls.name}", "horizon": args.horizon, "seed": params.seed, **config_to_dict(config)})
            model.fit(train, val)
            curves = {k: v for k, v in model.history_.items() if v}
            for step in range(max((len(v) for v in curves.values()), default=0)):
                for key, values in curves.items():
                    if step < len(values):
                        live.log_metric(key.replace("_", "/", 1), values[step])  # train_loss -> train/loss
                live.next_step()
            live.summary["fit_seconds"] = round(model.fit_seconds_, 3)
            live.summary["best_iteration"] = model.best_iteration_
            live.summary["n_train"], live.summary["n_val"] = len(train), len(val)
        model.save(model_dir)
    log.info("%s: fitted in %.1fs -> %s", name, model.fit_seconds_, MODELS_DIR / name)


def load_split(split: str, horizon: int) -> Samples:
    """Labelled samples of one split, or a one-line error naming the fix."""
    directory = WINDOWS_DIR / split
    try:
        samples = Samples.open(directory, horizon)
    except FileNotFoundError as exc:
        raise TrendfactoryError(f"{exc}") from None
    except KeyError:
        from trendfactory.windows.reader import WindowSplit

        have = WindowSplit.open(directory).horizons
        raise TrendfactoryError(f"--horizon {horizon}: the window store {directory} has horizons {have}; use one of them or add it to label.horizons") from None
    return samples


def main() -> None:
    stage_main("train", main_body, add_args)


if __name__ == "__main__":
    main()
