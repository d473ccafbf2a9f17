"""Walk-forward selection: per-fold validation series, the expanding choice, the stitched series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trendfactory.evaluation.metrics import daily_ic
from trendfactory.evaluation.selection import chosen_by_fold, fold_of_dates, seed_daily_by_fold, stitch, walk_forward_choices


def _val(means: list[float], seeds: int = 2, n: int = 50, seed: int = 0) -> dict[int, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    return {k: pd.DataFrame({s: m + 0.01 * rng.standard_normal(n) for s in range(seeds)}, index=pd.bdate_range(f"{2001 + 2 * k}-01-01", periods=n)) for k, m in enumerate(means)}


def test_seed_daily_by_fold_keeps_each_folds_own_rows():
    # one date scored by two folds' fits (overlapping validation blocks): both rows count, each in its fold
    rows = []
    for fold, sign in ((0, 1.0), (1, -1.0)):
        for seed in (0, 1):
            for sym, score in zip("ABCD", (1.0, 2.0, 3.0, 4.0)):
                rows.append({"fold": fold, "seed": seed, "symbol": sym, "datetime": pd.Timestamp("2005-01-03"), "score": sign * score, "ret": score})
    out = seed_daily_by_fold(pd.DataFrame(rows), lambda f: daily_ic(f, "spearman"))
    assert sorted(out) == [0, 1] and list(out[0].columns) == [0, 1]
    assert out[0].iloc[0].tolist() == [1.0, 1.0] and out[1].iloc[0].tolist() == [-1.0, -1.0]


def test_choice_of_fold_k_reads_blocks_up_to_k_only():
    val = {"a": _val([0.03, 0.0, 0.0]), "b": _val([0.0, 0.02, 0.05])}
    choices = walk_forward_choices(val, [0, 1, 2])
    assert [c.chosen for c in choices] == ["a", "a", "b"]  # b's mean passes a's only with block 2
    changed = {"a": val["a"], "b": {**val["b"], 2: val["b"][2] - 1.0}}  # block 2 only: folds 0 and 1 unchanged
    again = walk_forward_choices(changed, [0, 1, 2])
    assert [c.chosen for c in again][:2] == ["a", "a"] and again[0] == choices[0] and again[1] == choices[1]
    assert choices[0].window == ("2001-01-01", "2001-03-09")


def test_missing_models_and_ties():
    assert walk_forward_choices({}, [0])[0].chosen is None
    tie = {"b": _val([0.01]), "a": _val([0.01])}
    tie["a"] = tie["b"]
    assert walk_forward_choices(tie, [0])[0].chosen == "a"  # ties go by name
    one_seed = walk_forward_choices({"a": _val([0.02], seeds=1), "b": _val([0.01], seeds=1)}, [0])[0]
    assert one_seed.seed_spread is None and not one_seed.coin_flip


def test_stitch_takes_each_blocks_rows_from_its_choice():
    dates = pd.bdate_range("2010-01-01", periods=30)
    starts = [dates[0], dates[10], dates[20]]
    daily = {m: pd.DataFrame({"rank_ic": float(i), "net": 0.0}, index=dates) for i, m in enumerate(("a", "b"))}
    assert fold_of_dates(pd.DatetimeIndex([dates[0] - pd.Timedelta(days=1), dates[9], dates[10], dates[29]]), starts).tolist() == [-1, 0, 1, 2]
    choices = walk_forward_choices({"a": _val([0.02, 0.02, 0.0]), "b": _val([0.0, 0.0, 0.1])}, [0, 1, 2])
    out = stitch(daily, choices, starts)
    assert out.index.equals(dates) and out["rank_ic"].tolist() == [0.0] * 20 + [1.0] * 10
    assert chosen_by_fold(choices) == "a (folds 0, 1), b (fold 2)"
