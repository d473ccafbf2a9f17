"""What every process that computes sets up first, stage or not (a stage, a Ray worker, a tuning
trial, a benchmark): one seed for every generator, and the log format."""

from __future__ import annotations

import logging
import random
import sys

import numpy as np


def seed_everything(seed: int) -> None:
    """One seed for Python, numpy and (when the stage has loaded it) torch.

    Torch is seeded only if already imported: stages of tabular models never load it (it costs
    over a second per stage), and code that imports torch lazily seeds it from the same
    ``seed`` it is given. Libraries with their own generators (XGBoost, LightGBM, CatBoost,
    scikit-learn) get ``seed`` through their parameters."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def configure_logging(stage: str) -> None:
    """INFO lines prefixed with the stage's name on stderr (also in a stage's worker processes)."""
    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s", stream=sys.stderr)
    for noisy in ("matplotlib", "PIL", "dvclive", "dvc"):  # their INFO lines are not ours
        logging.getLogger(noisy).setLevel(logging.WARNING)
