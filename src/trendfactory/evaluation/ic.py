"""The daily cross-sectional IC: the one definition every stage shares.

Its own module because the trainers (early stopping on validation Rank IC) and the tuner need
it without the statistics the evaluation adds on top (``metrics``, ``significance``): a train
stage then depends on this file alone, and a change to a test statistic reruns the evaluations,
not the fits.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd


def daily_ic(frame: pd.DataFrame, method: Literal["pearson", "spearman"] = "pearson") -> pd.Series:
    """Per-date cross-sectional correlation of ``score`` with ``ret``, indexed by datetime.

    Dates with fewer than 2 finite pairs, or a constant score or return, are dropped (an IC
    there is undefined, and a zero would bias the mean). Spearman is Pearson on within-date
    average ranks of the finite pairs.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"daily_ic: got method={method!r}, expected 'pearson' or 'spearman'")
    x = frame["score"].to_numpy(dtype=np.float64)
    y = frame["ret"].to_numpy(dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    d = pd.DataFrame({"datetime": frame["datetime"].to_numpy()[ok], "x": x[ok], "y": y[ok]})
    if method == "spearman":
        d[["x", "y"]] = d.groupby("datetime")[["x", "y"]].rank(method="average")
    g = d.groupby("datetime", sort=True)
    # Constancy is tested on the values: demeaning a constant leaves float noise, not zeros.
    span = g[["x", "y"]].agg(["min", "max", "size"])
    keep = (span[("x", "size")] >= 2) & (span[("x", "max")] > span[("x", "min")]) & (span[("y", "max")] > span[("y", "min")])
    xc = d["x"] - g["x"].transform("mean")
    yc = d["y"] - g["y"].transform("mean")
    sums = pd.DataFrame({"xy": xc * yc, "xx": xc * xc, "yy": yc * yc}).groupby(d["datetime"], sort=True).sum()
    ic = (sums["xy"] / np.sqrt(sums["xx"] * sums["yy"]))[keep].clip(-1.0, 1.0)
    ic.name = "ic" if method == "pearson" else "rank_ic"
    ic.index.name = "datetime"
    return ic.astype(np.float64)
