"""scripts/barrier_balance.py judges label.barrier_k on fold 0's train rows only: the rows it
counts end before the first validation block, a wider barrier moves labels into the flat class,
and the pick is the most balanced candidate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from scripts import barrier_balance
from trendfactory.data.synthetic import generate_bars
from trendfactory.params import SyntheticConfig, parse_params

SPLIT = {"scheme": "walk_forward", "test_start": "2001-06-01", "fold": 1, "val_years": 1, "embargo": 5}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """5 symbols x 800 business days from 1999-01-01, sorted by symbol, time (featurize's order)."""
    frame = generate_bars(SyntheticConfig(n_symbols=5, n_bars=800, start="1999-01-01"), seed=3)
    return frame.sort_values(["symbol", "datetime"], ignore_index=True)


@pytest.fixture(scope="module")
def params():
    return parse_params({"label": {"horizons": [5, 20]}, "split": SPLIT})


def test_counted_rows_are_fold_0_train_rows_purged_before_validation(bars, params):
    rows = barrier_balance.first_train_rows(bars, params)
    stamps = pd.to_datetime(bars["datetime"])
    val_start = pd.Timestamp("2000-06-01")  # test_start - val_years
    assert rows.any() and stamps[rows].max() < val_start
    # purge: the last rows before val are dropped (a 20-bar label would reach into val)
    last_before = stamps[stamps < val_start].max()
    assert not rows[(stamps == last_before).to_numpy()].any()


def test_a_wider_barrier_moves_labels_to_flat(bars, params):
    rows = barrier_balance.first_train_rows(bars, params)
    narrow, wide = (barrier_balance.class_shares(bars, rows, params, k) for k in (0.2, 3.0))
    for h in (5, 20):
        assert np.isclose(narrow[h].sum(), 1.0) and np.isclose(wide[h].sum(), 1.0)
        assert wide[h][1] > 0.8 > 0.2 > narrow[h][1]  # index 1: the flat class (0)
    assert barrier_balance.imbalance(wide) > barrier_balance.imbalance(barrier_balance.class_shares(bars, rows, params, 0.75))


def test_main_prints_every_candidate_and_picks_the_most_balanced(tmp_path, bars, params, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"label": {"horizons": [5, 20]}, "split": SPLIT}))
    bars.to_parquet(tmp_path / "bars.parquet")
    ks = [0.2, 0.75, 3.0]
    assert barrier_balance.main(["--params", str(tmp_path / "params.yaml"), "--bars", str(tmp_path / "bars.parquet"), "--k", *map(str, ks)]) == 0
    out = capsys.readouterr().out
    rows = barrier_balance.first_train_rows(bars, params)
    scores = {k: barrier_balance.imbalance(barrier_balance.class_shares(bars, rows, params, k)) for k in ks}
    assert f"most balanced on fold 0's train block: barrier_k {min(scores, key=scores.get):g}" in out
    assert all(f"\n{k:<5g} h5:" in out for k in ks)


def test_missing_bars_and_a_bad_k_are_one_line_errors(tmp_path, capsys):
    assert barrier_balance.main(["--bars", str(tmp_path / "nope.parquet")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.parquet'}: missing; run `dvc repro ingest` first"
    (tmp_path / "b.parquet").write_bytes(b"not parquet")
    assert barrier_balance.main(["--bars", str(tmp_path / "b.parquet"), "--k", "0.5", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --k: -1 is not > 0; give barrier multiples > 0"
    assert barrier_balance.main(["--bars", str(tmp_path / "b.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'b.parquet'}: not ingest's bars (") and err.endswith("rerun `dvc repro ingest`") and "\n" not in err
