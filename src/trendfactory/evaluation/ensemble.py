"""Ensembles of the trained models, built fold by fold from their walk-forward predictions.

Two per horizon, each predicting every fold's test block from information available before it:

- ``rank_avg``: the average of the within-date score ranks of the top ``k`` models, chosen by
  their Rank IC on *that fold's* validation block (which precedes its test block; the folds'
  pooled validation would include blocks after it).
- ``stack``: a ridge regression of the within-date rank of the realised return on the models'
  within-date score ranks, fitted only on the models' *out-of-sample test predictions of
  earlier folds* whose label spans end before the fold it predicts -- never on that fold. The
  first fold has no earlier out-of-sample predictions: it gets ``rank_avg``'s scores (its
  ``stacked`` column says so).

Probabilities (for the classification metrics) are the members' average; ``score`` is the
ensemble's within-date rank in [-1, 1]. Ensembles have no validation predictions of their own
that were not used to build them, so they are shown beside the models but never *selected*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendfactory.evaluation.metrics import daily_ic
from trendfactory.models import get_model_class
from trendfactory.params import Params

ENSEMBLES = ("rank_avg", "stack")
MIN_MEMBERS = 2  # an ensemble of one model is that model
PROBA = ["p_down", "p_flat", "p_up"]
KEYS = ["symbol", "datetime"]


@dataclass(frozen=True)
class Member:
    """One model's walk-forward predictions at one horizon (with ``fold``, ``label``, ``ret``)."""

    name: str
    val: pd.DataFrame
    test: pd.DataFrame


def ensemble_members(params: Params) -> list[str]:
    """The models the ensembles are built from, in run-list order: every non-baseline model of
    run.models, run.neural_models and run.joint_models (tuned variants stand beside their
    defaults, not in the ensembles). Empty when fewer than ``MIN_MEMBERS``: no ensemble is built."""
    run = params.run
    members = [m for m in (*run.models, *run.neural_models, *run.joint_models) if get_model_class(m).family != "baseline"]
    return members if len(members) >= MIN_MEMBERS else []


def date_rank(frame: pd.DataFrame, column: str) -> pd.Series:
    """Within-date rank of ``column`` scaled to [-1, 1] (0 where a date has one row or all ties)."""
    g = frame.groupby("datetime")[column]
    r = g.rank(method="average")
    n = g.transform("count")
    return ((r - 1) / (n - 1).where(n > 1) * 2 - 1).fillna(0.0)


def _wide(members: list[Member], split: str, fold: int | None = None) -> pd.DataFrame:
    """Rows keyed by (symbol, datetime): each member's score rank, plus label, ret and the
    members' mean probabilities, on the rows every member predicted."""
    parts = []
    for m in members:
        f = getattr(m, split)
        if fold is not None:
            f = f[f["fold"] == fold]
        f = f.assign(rank=date_rank(f, "score")).set_index(KEYS)
        parts.append(f)
    common = parts[0].index
    for p in parts[1:]:
        common = common.intersection(p.index)
    base = parts[0].loc[common]
    wide = pd.DataFrame({m.name: p.loc[common, "rank"] for m, p in zip(members, parts)}, index=common)
    wide[PROBA] = sum(p.loc[common, PROBA].to_numpy() for p in parts) / len(parts)
    for c in ("label", "ret", "fold", "horizon"):
        wide[c] = base[c].to_numpy()
    return wide.sort_index()


def top_k(members: list[Member], fold: int, k: int) -> list[Member]:
    """The ``k`` members with the highest Rank IC on ``fold``'s validation block (ties: name)."""

    def val_ric(m: Member) -> float:
        ic = daily_ic(m.val[m.val["fold"] == fold], "spearman")
        return float(ic.mean()) if len(ic) else -np.inf

    return sorted(members, key=lambda m: (-val_ric(m), m.name))[:k]


def _frame(wide: pd.DataFrame, score: np.ndarray, stacked: bool) -> pd.DataFrame:
    """The predictions contract (plus label, ret, fold) of an ensemble's rows."""
    out = wide[["horizon"]].reset_index()
    proba = wide[PROBA].to_numpy()
    out["pred"] = (np.argmax(proba, axis=1) - 1).astype(np.int8)
    out[PROBA] = proba
    out["score"] = score
    out["score"] = date_rank(out, "score").to_numpy()
    out["label"] = wide["label"].to_numpy()
    out["ret"] = wide["ret"].to_numpy()
    out["fold"] = wide["fold"].to_numpy()
    out["stacked"] = stacked
    return out


def stack_training_rows(earlier: pd.DataFrame, test_start: pd.Timestamp, calendar: pd.DatetimeIndex, span: int) -> pd.DataFrame:
    """Rows of earlier folds' out-of-sample predictions whose label span (``span`` = entry lag +
    horizon bars) ends before ``test_start``: the only rows a stack for that fold may learn from."""
    before = calendar[calendar < test_start]
    if len(before) <= span:
        return earlier.iloc[0:0]
    last_decision = before[-span - 1]  # decided here, its trade exits on the last bar before test_start
    return earlier[earlier.index.get_level_values("datetime") <= last_decision]


def build_ensembles(members: list[Member], folds: list[dict], k: int, alpha: float, entry_lag: int, horizon: int, calendar: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    """``rank_avg`` and ``stack`` test predictions over every fold (module docstring)."""
    from sklearn.linear_model import Ridge

    names = [m.name for m in members]
    out: dict[str, list[pd.DataFrame]] = {e: [] for e in ENSEMBLES}
    history = []  # earlier folds' out-of-sample member ranks, for the stack
    for f in folds:
        fold = int(f["index"])
        wide = _wide(members, "test", fold)
        chosen = top_k(members, fold, k)
        names_k = [m.name for m in chosen]
        wide_k = _wide(chosen, "test", fold)  # the chosen members' rows and mean probabilities
        rank_avg = _frame(wide_k, wide_k[names_k].mean(axis=1).to_numpy(), stacked=False).assign(members=",".join(names_k))
        out["rank_avg"].append(rank_avg)
        train = stack_training_rows(pd.concat(history) if history else wide.iloc[0:0], pd.Timestamp(f["test_start"]), calendar, entry_lag + horizon)
        train = train[np.isfinite(train["ret"].to_numpy())]
        if len(train) > len(names) * 10:
            target = date_rank(train.reset_index(), "ret").to_numpy()
            ridge = Ridge(alpha=alpha).fit(train[names].to_numpy(), target)
            out["stack"].append(_frame(wide, ridge.predict(wide[names].to_numpy()), stacked=True).assign(members=",".join(names)))
        else:  # the first fold: nothing earlier to learn from
            out["stack"].append(rank_avg.copy())
        history.append(wide)
    return {e: pd.concat(v, ignore_index=True) for e, v in out.items()}
