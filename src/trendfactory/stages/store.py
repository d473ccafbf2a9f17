"""The ``--model`` / ``--horizon`` arguments the train, evaluate and tune stages share. (Reading
the window store: ``trendfactory.windows.reader.open_store`` and
``trendfactory.models.data.load_split``.)"""

from __future__ import annotations

import argparse


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see `trendfactory models`)")
    parser.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="label horizon in bars (one of label.horizons); models trained for every horizon jointly (dual_tower) take none",
    )
