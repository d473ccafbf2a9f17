"""trendfactory.evaluation.plots: lines a reader can tell apart, and equity pictures where the
model's book is readable beside the much larger buy-and-hold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trendfactory.evaluation import plots


def test_two_dozen_series_each_get_their_own_colour_and_dash():
    names = [f"m{i}" for i in range(22)] + ["majority", "momentum"]
    families = {"majority": "baseline", "momentum": "baseline"}
    styles = plots.line_styles(names, families)
    looks = {(tuple(np.round(s["color"], 4)) if not isinstance(s["color"], str) else s["color"], s["ls"]) for s in styles.values()}
    assert len(looks) == len(names)
    models = [styles[n] for n in names[:17]]
    assert len({tuple(np.round(s["color"], 4)) for s in models}) == 17  # 17 models: 17 colours, not a 10-colour cycle
    assert {s["ls"] for s in models} > {"-"}  # and dash patterns on top
    assert styles["majority"]["ls"] == "--"


def test_buy_and_hold_gets_its_own_axis():
    dates = pd.bdate_range("2010-01-01", periods=300)
    rng = np.random.default_rng(0)
    books = {m: pd.DataFrame({"net": rng.normal(0, 1e-3, 300), "bench": rng.normal(5e-3, 1e-2, 300)}, index=dates) for m in ("lstm", "majority")}
    fig = plots.equity_figure(books, {"majority": "baseline"}, "test")
    left, right = fig.axes
    book_span = max(abs(np.asarray(line.get_ydata())).max() for line in left.get_lines() if len(line.get_ydata()) > 2)
    low, high = left.get_ylim()
    assert high - low < 20 * book_span  # the books fill their axis instead of hugging zero
    assert len(right.get_lines()) == 1 and "buy-and-hold" in right.get_lines()[0].get_label()
    plots.close(fig)
