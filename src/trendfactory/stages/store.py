"""The window store as the train and evaluate stages read it, with one-line errors that name
the fix; and their shared ``--model`` / ``--horizon`` arguments."""

from __future__ import annotations

import argparse

from trendfactory.errors import TrendfactoryError
from trendfactory.models import Samples
from trendfactory.paths import WINDOWS_DIR
from trendfactory.windows.reader import WindowSplit


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
