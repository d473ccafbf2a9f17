"""What every stage entry point shares: argument parsing, logging, one-line errors."""

from __future__ import annotations

import argparse
import logging
import random
import sys
from typing import Callable

import numpy as np

from trendfactory.errors import TrendfactoryError
from trendfactory.params import Params, load_params

log = logging.getLogger("trendfactory")


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


def stage_main(name: str, body: Callable[[Params, argparse.Namespace], None], add_args=None) -> None:
    """Parse --params, load and validate them, run `body`; a TrendfactoryError exits 1 with one line."""
    parser = argparse.ArgumentParser(prog=f"python -m trendfactory.stages.{name}")
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
    if add_args:
        add_args(parser)
    args = parser.parse_args()
    configure_logging(name)
    try:
        params = load_params(args.params)
        seed_everything(params.seed)
        body(params, args)
    except TrendfactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
