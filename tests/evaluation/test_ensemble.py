"""Ensembles: the stack never learns from the fold it predicts (nor from labels that reach into
it), and the rank average picks its members on each fold's own validation block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.evaluation.ensemble import Member, build_ensembles, date_rank, ensemble_members, top_k
from trendfactory.params import parse_params

H, LAG = 5, 1
CAL = pd.bdate_range("2010-01-01", periods=3 * 300)
SYMBOLS = [f"S{i}" for i in range(12)]
FOLDS = [{"index": k, "test_start": str(CAL[300 * k].date())} for k in range(3)]


def _frame(dates, fold, rng, signal):
    """Predictions of one model on ``dates``: score = signal * ret + noise."""
    n = len(dates) * len(SYMBOLS)
    ret = rng.standard_normal(n) * 0.02
    score = np.tanh(signal * ret / 0.02 + rng.standard_normal(n))
    p_up = (score + 1) / 3
    return pd.DataFrame(
        {
            "symbol": np.tile(SYMBOLS, len(dates)),
            "datetime": np.repeat(dates, len(SYMBOLS)),
            "horizon": H,
            "pred": np.sign(score).astype(np.int8),
            "p_down": (1 - p_up) / 2,
            "p_flat": (1 - p_up) / 2,
            "p_up": p_up,
            "score": score,
            "label": np.sign(ret).astype(int),
            "ret": ret,
            "fold": fold,
        }
    )


def _members(seed=0):
    """Four models of decreasing skill on 3 folds (test blocks of 300 dates; validation: the
    100 dates before each, none before the first)."""
    rng = np.random.default_rng(seed)
    members = []
    base = {}
    for k in range(3):
        for block, dates in (("val", CAL[300 * k - 100 : 300 * k] if k else CAL[:0]), ("test", CAL[300 * k : 300 * (k + 1)])):
            base[(k, block)] = dates
    # one market: every model's rows share the realised returns of a (fold, block)
    shared_ret = {key: np.random.default_rng(1000 + i).standard_normal(len(d) * len(SYMBOLS)) * 0.02 for i, (key, d) in enumerate(base.items())}
    for name, signal in (("good", 0.8), ("weak", 0.2), ("noise", 0.0), ("bad", -0.3)):
        parts = {"val": [], "test": []}
        for (k, block), dates in base.items():
            if not len(dates):
                continue
            f = _frame(dates, k, rng, signal)
            f["ret"] = shared_ret[(k, block)]
            f["score"] = np.tanh(signal * f["ret"] / 0.02 + rng.standard_normal(len(f)))
            parts[block].append(f)
        members.append(Member(name, pd.concat(parts["val"], ignore_index=True) if parts["val"] else _frame(CAL[:0], 0, rng, 0), pd.concat(parts["test"], ignore_index=True)))
    return members


def _build(members):
    return build_ensembles(members, FOLDS, 2, 1.0, LAG, H, CAL)


def test_stack_never_sees_the_fold_it_predicts():
    members = _members()
    before = _build(members)["stack"]
    for k in (1, 2):
        # perturb the realised returns of fold k and later, and of the last (lag + h) dates of fold
        # k - 1 (whose label spans reach into fold k): fold k's stacked scores must not move
        cutoff = CAL[300 * k - (LAG + H)]
        changed = []
        for m in members:
            t = m.test.copy()
            hit = t["datetime"] >= cutoff
            t.loc[hit, "ret"] = np.random.default_rng(7).standard_normal(int(hit.sum()))
            changed.append(Member(m.name, m.val, t))
        after = _build(changed)["stack"]
        a, b = (f[f["fold"] == k].sort_values(["datetime", "symbol"])["score"].to_numpy() for f in (before, after))
        np.testing.assert_array_equal(a, b, err_msg=f"fold {k}'s stack moved when later returns changed")
        assert before[before["fold"] == k]["stacked"].all()
    # ...and the stack does learn: perturbing earlier folds' returns moves it
    m0 = [Member(m.name, m.val, m.test.assign(ret=np.where(m.test["fold"] == 0, -m.test["ret"], m.test["ret"]))) for m in members]
    moved = _build(m0)["stack"]
    assert not np.allclose(before[before["fold"] == 1]["score"], moved[moved["fold"] == 1]["score"])
    assert not before[before["fold"] == 0]["stacked"].any()  # the first fold falls back to the rank average


def test_rank_average_members_come_from_each_folds_own_validation():
    members = _members()
    assert [m.name for m in top_k(members, 1, 2)] == ["good", "weak"]
    built = _build(members)["rank_avg"]
    assert set(built[built["fold"] == 1]["members"]) == {"good,weak"}
    # make "bad" look great on fold 2's validation only: fold 2 picks it, fold 1 does not
    flipped = [Member(m.name, m.val.assign(score=np.where(m.val["fold"] == 2, -m.val["score"], m.val["score"])) if m.name == "bad" else m.val, m.test) for m in members]
    assert "bad" in [m.name for m in top_k(flipped, 2, 2)]
    assert "bad" not in [m.name for m in top_k(flipped, 1, 2)]


def test_ensemble_predictions_follow_the_contract():
    built = _build(_members())
    for name, f in built.items():
        assert f["score"].between(-1, 1).all(), name
        np.testing.assert_allclose(f[["p_down", "p_flat", "p_up"]].sum(axis=1), 1.0)
        assert set(f["pred"].unique()) <= {-1, 0, 1}
        assert not f.duplicated(["symbol", "datetime"]).any()


def test_date_rank_is_within_date_and_bounded():
    f = pd.DataFrame({"datetime": [1, 1, 1, 2], "score": [0.1, 0.5, 0.3, 9.0]})
    assert date_rank(f, "score").tolist() == pytest.approx([-1.0, 1.0, 0.0, 0.0])


def test_ensemble_members_are_the_non_baseline_models_of_the_run_lists():
    def members(**run):
        return ensemble_members(parse_params({"run": {"models": [], "neural_models": [], "joint_models": [], "tune": [], **run}}))

    run = {"models": ["majority", "momentum", "logistic", "xgboost"], "neural_models": ["lstm"], "joint_models": ["dual_tower"]}
    assert members(**run) == ["logistic", "xgboost", "lstm", "dual_tower"]  # baselines out, run-list order
    assert members(**run, tune=["xgboost"]) == ["logistic", "xgboost", "lstm", "dual_tower"]  # no xgboost_tuned
    assert members(models=["majority", "momentum", "logistic"]) == []  # one model: no ensemble
    assert members(models=["logistic"], neural_models=["lstm"]) == ["logistic", "lstm"]
