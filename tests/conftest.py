"""Shared fixtures: small generated data only."""

from __future__ import annotations

import trendfactory  # noqa: F401  (first: it fixes numpy's and torch's CPU paths before they load)

import os

# No test downloads a checkpoint: the pre-trained models' tests write tiny ones themselves
# (tests/models/tiny_checkpoints.py); a Hugging Face id fails at once instead of retrying the network.
# Set before anything imports huggingface_hub, which reads it once.
os.environ["HF_HUB_OFFLINE"] = "1"
# Every Ray the suite starts (a local one, the two-node test cluster, a stage's) runs without
# token authentication. A process keeps the mode it first connected with: a test worker that
# joined the test cluster and later starts a local Ray (token mode by default) could not talk
# to its own GCS ("InvalidAuthToken"). The project's code does not touch authentication.
os.environ["RAY_AUTH_MODE"] = "disabled"

import numpy as np
import pandas as pd
import pytest

from trendfactory.data.synthetic import generate_bars
from trendfactory.params import SyntheticConfig

# The suite runs on every core (pyproject.toml's addopts: pytest-xdist, one test file per worker
# at a time, in collection order). The files that take longest go first, so that no worker starts
# one of them while the others are finishing: longest first keeps the workers' ends close.
# Seconds: each file's total on 2 cores, both workers busy; a file not listed keeps its place.
SLOWEST_FIRST = (
    "tests/test_docs_commands_run.py",  # 1,390 s: a small DVC project, then every docs command
    "tests/stages/test_dvc_repro.py",  # 980 s: a small DVC project's repro, remote and experiments
    "tests/test_numerics.py",  # 290 s: dvc repro under two emulated instruction sets
    "tests/models/test_model_canary.py",  # 190 s: every model on a planted signal and a random walk
    "tests/models/test_networks.py",  # 190 s
    "tests/test_parallel.py",  # 130 s: a local Ray and a two-node cluster
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the files of SLOWEST_FIRST first, in its order; every other test keeps its order."""
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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
