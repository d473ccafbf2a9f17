"""Where the pipeline's stages read and write (relative to the project root; see dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

CODE_DEPS_DIR = Path("data/code_deps")  # code_deps: <kind>.txt, the files each kind of stage runs, hashed
PARAMS_CHECKED = Path("data/params_checked.txt")  # check_params: fixed text once params.yaml validates
RAW_DIR = Path("data/raw")
FEATURES_DIR = Path("data/features")
WINDOWS_DIR = Path("data/windows")
PREDICTIONS_DIR = Path("data/predictions")
MODELS_DIR = Path("models")
TRAIN_LOGS_DIR = Path("metrics/train")
EVAL_DIR = Path("metrics/eval")
ENSEMBLE_PREDICTIONS_DIR = Path("data/ensembles")  # not under data/predictions: the ensemble stage reads that
ENSEMBLE_EVAL_DIR = Path("metrics/ensembles")
COMPARE_JSON = Path("metrics/compare.json")
SUMMARY_DIR = Path("metrics/summary")  # the verdict per horizon, h<h>.json: the compact DVC metric
COMPARISON_MD = Path("metrics/comparison.md")
COMPARE_PLOTS_DIR = Path("plots/compare")
TUNED_DIR = Path("tuned")  # tune@<m>-<h>: each study's best params, <m>-h<h>.yaml (git-tracked; train reads it)
TUNE_PLOTS_DIR = Path("plots/tune")  # Optuna's history and importance plots per study
STUDIES_DIR = Path(".tuning")  # the default study storage: one journal file per study (resumable; not an output)
CHECKPOINTS_DIR = Path(".checkpoints")  # neural fits in progress (not a DVC output)


def item_id(model: str, horizon: int) -> str:
    """The name of one train/evaluate matrix item's outputs: ``xgboost-h5``."""
    return f"{model}-h{int(horizon)}"


def predictions_file(model: str, horizon: int, split: str, joint: bool = False) -> Path:
    """Where the train stage writes one horizon's walk-forward predictions of ``split``
    ('val' | 'test'): data/predictions/<model>-h<h>/<split>_h<h>.parquet, or under
    data/predictions/<model>/ for a model trained for every horizon jointly."""
    return PREDICTIONS_DIR / model_dir(model, horizon, joint).name / f"{split}_h{int(horizon)}.parquet"


def model_dir(model: str, horizon: int, joint: bool = False) -> Path:
    """Where a trained model lives: models/<model>-h<h>/, or models/<model>/ for a model
    trained once for every horizon jointly."""
    return MODELS_DIR / (model if joint else item_id(model, horizon))


def seed_name(seed_index: int) -> str:
    """``seed_00``: the folder of a fold's fit with seed number ``seed_index``."""
    return f"seed_{int(seed_index):02d}"


def fitted_model_dir(item_dir: Path, fold: int, seed_index: int = 0) -> Path:
    """One fit of an item: <item_dir>/fold_XX/seed_YY (deterministic models have seed_00 only)."""
    from trendfactory.features.splits import fold_name  # a light module; no cycle at import time

    return Path(item_dir) / fold_name(fold) / seed_name(seed_index)
