"""Stage `tune@<model>-<h>`: Optuna studies of one model in run.tune at one horizon, one per
walk-forward fold after the first.

    python -m trendfactory.stages.tune --model lightgbm --horizon 5

Objective of fold k's study: the pooled validation Rank IC of folds 0..k-1 (trendfactory.tuning:
fold k's own validation block, where the model selection scores fold k's fit, is never tuned on;
test is never read). Fold 0 keeps params.yaml's configuration. Trials run as Ray tasks
(``parallel``), the studies live in ``tune.storage``. Writes:

- tuned/<model>-h<h>.yaml -- each fold's best params (git-tracked): train_tuned@<model>-<h>
  fits <model>_tuned on fold k with fold k's, so a tuned run reproduces with ``dvc repro``;
- plots/tune/<model>-h<h>/ -- per study, Optuna's optimisation history, per-fold pruning curves
  and hyperparameter importances (fANOVA) as PNG (fold_XX_history.png, ...; none for fold 0).
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from trendfactory.errors import TrendfactoryError
from trendfactory.features.splits import fold_name
from trendfactory.io import atomic_dir
from trendfactory.models.registry import check_tunable
from trendfactory.models.search import tuned_file, write_tuned
from trendfactory.parallel import placement
from trendfactory.params import Params
from trendfactory.paths import TUNE_PLOTS_DIR, item_id
from trendfactory.stages.common import log, stage_main
from trendfactory.stages.store import add_args
from trendfactory.windows.reader import open_store


MAX_LEGEND = 8  # trials named in the intermediate-values plot's legend, at most


def save_plots(study, directory: Path, title: str, prefix: str = "") -> list[str]:
    """Optuna's matplotlib plots of ``study`` as PNGs ``<prefix><plot>.png`` in ``directory``;
    returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    plots = {"history": ovm.plot_optimization_history, "intermediate": ovm.plot_intermediate_values}
    if len(complete) >= 2 and any(len({str(t.params.get(k)) for t in complete}) > 1 for k in complete[0].params):
        plots["importance"] = ovm.plot_param_importances
    else:
        log.warning("%s: no importance plot (%d complete trial(s): importances need two or more that differ)", title, len(complete))
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the matplotlib backend is marked experimental
        for name, plot in plots.items():
            ax = plot(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            if name == "intermediate":
                _fold_steps(ax)
            fig.suptitle(f"{title}: {name}", fontsize=10)
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            fig.savefig(directory / f"{prefix}{name}.png", dpi=100)
            plt.close(fig)
            written.append(f"{prefix}{name}.png")
    return written


def _fold_steps(ax) -> None:
    """The pruning curves' axis in folds, and no per-trial legend past a handful of trials (50
    entries overflow the figure; the curves' shape is what the plot is for)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step j: pooled validation after folds 0..j")
    legend = ax.get_legend()
    if legend is not None and len(legend.get_texts()) > MAX_LEGEND:
        legend.remove()


def main_body(params: Params, args: argparse.Namespace) -> None:
    cls = check_tunable(params.run, args.model, f"--model {args.model}")
    if args.horizon is None:
        raise TrendfactoryError(f"--horizon: a study tunes {cls.name} at one horizon; give one of label.horizons")
    if args.horizon not in params.label.horizons:
        raise TrendfactoryError(f"--horizon {args.horizon}: not in label.horizons {list(params.label.horizons)}")
    store = open_store()
    where = placement(params.parallel.address, params.parallel.cpus)
    from trendfactory.tuning import OBJECTIVE, run_studies  # optuna loads here, after the cheap checks

    results = run_studies(params, cls.name, args.horizon, store.n_folds, where)
    name = item_id(cls.name, args.horizon)
    written = []
    with atomic_dir(TUNE_PLOTS_DIR / name) as plot_dir:
        for k, result in enumerate(results):
            if result.study is not None:  # fold 0: no study
                written += save_plots(result.study, plot_dir, f"{name} {fold_name(k)} (validation of folds 0..{k - 1})", prefix=f"{fold_name(k)}_")
    record = {"objective": OBJECTIVE, "storage": results[0].storage, "folds": [r.record for r in results]}
    write_tuned(tuned_file(cls.name, args.horizon), cls.name, args.horizon, record)
    for r in record["folds"]:
        if r["study"] is None:
            log.info("%s fold %d: %s", name, r["fold"], r["note"])
            continue
        log.info("%s fold %d: best %s (pooled val Rank IC of folds 0..%d %+.4f; %s)", name, r["fold"], r["params"], r["fold"] - 1, r["value"], ", ".join(f"{v} {k}" for k, v in r["trials"].items()))
    log.info("%s -> %s, %d plots in %s", name, tuned_file(cls.name, args.horizon), len(written), TUNE_PLOTS_DIR / name)


def main() -> None:
    logging.getLogger("optuna").setLevel(logging.WARNING)
    stage_main("tune", main_body, add_args)


if __name__ == "__main__":
    main()
