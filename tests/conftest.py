"""Shared fixtures: small generated data only."""

from __future__ import annotations

import trendfactory  # noqa: F401  (first: it fixes numpy's and torch's CPU paths before they load)

import os

# No test downloads a checkpoint: the pre-trained models' tests write tiny ones themselves
# (tests/models/tiny_checkpoints.py); a Hugging Face id fails at once instead of retrying the network.
# Set before anything imports huggingface_hub, which reads it once.
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pandas as pd
import pytest

from trendfactory.data.synthetic import generate_bars
from trendfactory.params import SyntheticConfig


@pytest.fixture
def synthetic_bars() -> pd.DataFrame:
    """6 symbols x 400 business days of OHLCV, a pure random walk."""
    return generate_bars(SyntheticConfig(n_symbols=6, n_bars=400), seed=7)


def write_csv(tmp_path, frame: pd.DataFrame, name: str = "bars.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
