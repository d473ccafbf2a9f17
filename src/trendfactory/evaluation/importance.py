"""Feature importance for the evaluate stage: the model's own where it has one, else
permutation importance per feature group on a split's log loss."""

from __future__ import annotations

import re

import numpy as np
from sklearn.metrics import log_loss

from trendfactory.models.base import TrendModel
from trendfactory.models.data import Samples

_LAG = re.compile(r"_lag\d+$")


def _loss(model: TrendModel, samples: Samples) -> float:
    return float(log_loss(samples.classes(), model.predict(samples).proba, labels=[0, 1, 2]))


MAX_PERMUTATION_ROWS = 4096  # a seeded sample of the block: the ranking of a handful of groups is stable at this size


def permutation_importance(model: TrendModel, samples: Samples, groups: dict[str, list[str]], seed: int = 0, max_rows: int = MAX_PERMUTATION_ROWS) -> dict[str, float]:
    """Group -> increase of log loss when the group's columns are shuffled across samples
    (one shuffle per group, the same permutation for every group; > 0 = the model uses it).
    On at most ``max_rows`` samples (a seeded random subset, in time order): one prediction pass
    per group is the evaluate stage's largest cost for a network."""
    rng = np.random.default_rng(seed)
    if len(samples) > max_rows:
        samples = samples.subset(np.sort(rng.choice(len(samples), max_rows, replace=False)))
    base = _loss(model, samples)
    perm = rng.permutation(len(samples))
    out = {}
    for group, columns in groups.items():
        cols = [c for c in columns if c in samples.feature_names]
        if cols:
            out[group] = _loss(model, samples.permuted(cols, perm)) - base
    return out


def feature_importance(model: TrendModel, samples: Samples, groups: dict[str, list[str]], seed: int = 0) -> dict:
    """{"kind", "features": {name: value} (native only), "groups": {group: value}}.

    Native importances (normalised gain, |standardised coef|...) are summed per group, lagged
    copies counting towards their feature; without one, groups are permuted on ``samples``."""
    native = model.feature_importance()
    if native is None:
        return {"kind": "permutation: increase of log loss when a group is shuffled", "features": {}, "groups": permutation_importance(model, samples, groups, seed)}
    group_of = {c: g for g, cols in groups.items() for c in cols}
    by_group: dict[str, float] = {}
    for name, value in native.items():
        g = group_of.get(_LAG.sub("", name), "other")
        by_group[g] = by_group.get(g, 0.0) + value
    return {"kind": "native: the model's own importance, normalised to sum 1", "features": native, "groups": by_group}


REGIME_FEATURES = ("ctx_mkt_ret_20", "ctx_ew_ret_20", "ctx_mkt_ret_60", "ctx_ew_ret_60")


def context_projection(model: TrendModel, samples: Samples) -> tuple[np.ndarray, np.ndarray, str] | None:
    """2-D PCA of the context embeddings, one point per date (the context is the same for every
    symbol on a date), with the trailing market return as the regime colour; None when the
    model has no ``embed`` or no market-return feature exists."""
    if not hasattr(model, "embed") or len(samples) == 0:
        return None
    regime = next((f for f in REGIME_FEATURES if f in samples.feature_names), None)
    if regime is None:
        return None
    c, _ = model.embed(samples)  # [n, Dc]
    dates = samples.keys()["datetime"].to_numpy()
    _, first = np.unique(dates, return_index=True)  # one row per date
    c = c[first] - c[first].mean(axis=0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    return c @ vt[:2].T, samples.raw_feature(regime)[first], regime
