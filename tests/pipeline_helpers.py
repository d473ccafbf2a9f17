"""Build a tiny pipeline's window stores in-process (the stages' own functions, no DVC)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from trendfactory.data.ingest import run_ingest
from trendfactory.features.build import build_features
from trendfactory.io import write_parquet
from trendfactory.params import Params, parse_params
from trendfactory.windows.store import build_split


def tiny_params(n_symbols: int = 6, n_bars: int = 420, signal: float = 0.5, horizons=(5,), seq_len: int = 8, **sections) -> Params:
    """Synthetic OHLCV, no embedded context: seconds to featurize."""
    raw = {
        "data": {"source": "synthetic", "start": None, "end": None, "synthetic": {"n_symbols": n_symbols, "n_bars": n_bars, "start": "2000-01-03", "signal_strength": signal}},
        "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
        "label": {"horizons": list(horizons)},
        "window": {"seq_len": seq_len},
    }
    raw.update(sections)
    return parse_params(raw)


def build_stores(root: Path, params: Params, train_frac: float = 0.6, val_frac: float = 0.2) -> Path:
    """ingest + featurize + window into ``root/data/...`` with one fold (the fixed scheme), split
    dates placed by fractions; returns the window store: ``Samples.open(store, h, 0, "train")``."""
    ingest = run_ingest(params.data, params.seed)
    dates = ingest.bars["datetime"].drop_duplicates().sort_values().reset_index(drop=True)
    te, ve = dates[int(len(dates) * train_frac)], dates[int(len(dates) * (train_frac + val_frac))]
    split = {"scheme": "fixed", "train_end": str(te.date()), "val_end": str(ve.date()), "embargo": 5}
    params = parse_params({**_as_raw(params), "split": split})
    return write_stores(root, params, ingest)


def write_stores(root: Path, params: Params, ingest=None) -> Path:
    """featurize + window of ``params`` (any split scheme) into ``root/data/...``; the window store's path."""
    ingest = ingest or run_ingest(params.data, params.seed)
    result = build_features(ingest.bars, ingest.context, params)
    feats = root / "data" / "features"
    write_parquet(result.frame, feats / "features.parquet")
    schema = result.schema
    build_split(feats / "features.parquet", root / "data" / "windows", schema["feature_columns"], schema["horizons"], params.window.seq_len, folds=result.folds, label=schema["label"])
    write_parquet(ingest.bars, root / "data" / "raw" / "bars.parquet")
    return root / "data" / "windows"


def _as_raw(params: Params) -> dict:
    import dataclasses

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(params)


ROOT = Path(__file__).resolve().parents[1]


# A tiny profile with a stage of every kind: the data layer, a tabular model of each library
# (scikit-learn, XGBoost, LightGBM, CatBoost), a convolutional network, the dual tower, evaluate,
# the ensembles and compare (two walk-forward folds, one horizon, one seed): about 2 minutes.
EVERY_KIND = {
    "data": {"source": "synthetic", "start": None, "end": None, "synthetic": {"n_symbols": 5, "n_bars": 900, "start": "2000-01-03", "signal_strength": 0.5}},
    "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
    "split": {"scheme": "walk_forward", "test_start": "2002-01-01", "fold": 1, "val_years": 1, "embargo": 5},
    "window": {"seq_len": 8},
    "label": {"horizons": [5]},
    "run": {"models": ["majority", "logistic", "xgboost", "lightgbm", "catboost"], "neural_models": ["tcn"], "joint_models": ["dual_tower"]},
    "models": {
        "xgboost": {"n_estimators": 30},
        "lightgbm": {"n_estimators": 30},
        "catboost": {"iterations": 30},
        "tcn": {"channels": 8, "dilations": [1, 2]},
        "dual_tower": {"context_hidden": [16], "stock_hidden": [32]},
    },
    "train": {"max_epochs": 2, "batch_size": 256},
    "evaluate": {"bootstrap_reps": 100, "seeds": 1},
}


def merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, mappings key by key at every depth."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def copy_project(work: Path, overrides: dict, env: dict | None = None) -> dict:
    """A DVC project in ``work`` (a git repo with dvc init and a first commit) running this checkout's stages: its
    dvc.yaml and a copy of src/, and params.yaml = the project's with ``overrides`` merged in.
    Returns the environment to run ``python -m dvc`` there with: stages run the interpreter
    running the tests on the copy's code (so a file added to the copy is what they import)."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ if env is None else env, DVC_NO_ANALYTICS="1", PYTHONPATH=str(work / "src"), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # DVCLive (train/evaluate) needs a repo with a commit, as every clone has
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "-c", "commit.gpgsign=false", "commit", "-qm", "project"],
    ):
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
    return env


def chance_band(y: np.ndarray, overlap: int) -> float:
    """4 standard errors of balanced accuracy under the null, with n shrunk by label overlap."""
    n_eff = np.array([(y == c).sum() for c in (-1, 0, 1)]) / overlap
    p = 1 / 3  # a chance classifier's recall on each class
    return 4 * np.sqrt(np.sum(p * (1 - p) / n_eff)) / 3


def repo_env() -> dict:
    """The environment for git and ``python -m dvc`` in a throwaway repository: a committer, no
    analytics, this interpreter's tools first on PATH."""
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        **{f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER") for what, value in (("NAME", "t"), ("EMAIL", "t@t"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run_ok(cmd: list[str], cwd: Path, env: dict) -> None:
    """Run ``cmd``; fail the test with its output when it exits non-zero."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
