"""The comparison: every model × horizon side by side, next to the baselines.

``compare_rows`` flattens each evaluate item's metrics into one row; ``comparison_markdown``
writes the page a reader should understand in ten seconds: per horizon, models sorted by test
Rank IC, each next to the best baseline, the best model named, fit time, and how correlated
the models' scores are (a diversity view for ensembling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BASELINE_FAMILY = "baseline"
SIGNIFICANT_T = 2.0  # a Newey-West t above this counts as a signal distinguishable from noise

# (key in the row, column title, format) of the per-horizon table, in order
TABLE_COLUMNS = (
    ("test_rank_ic", "Rank IC", "{:+.4f}"),
    ("test_rank_ic_tstat_nw", "t (NW)", "{:+.2f}"),
    ("test_ic", "IC", "{:+.4f}"),
    ("test_ic_tstat_nw", "IC t (NW)", "{:+.2f}"),
    ("test_rank_icir", "Rank ICIR", "{:+.3f}"),
    ("test_sharpe", "Sharpe (net)", "{:+.2f}"),
    ("test_annual_return", "ann. return", "{:+.2%}"),
    ("test_max_drawdown", "max DD", "{:.1%}"),
    ("test_turnover", "turnover/day", "{:.3f}"),
    ("test_balanced_accuracy", "bal. acc", "{:.4f}"),
    ("test_macro_f1", "macro F1", "{:.4f}"),
    ("test_log_loss", "log loss", "{:.4f}"),
    ("val_rank_ic", "val Rank IC", "{:+.4f}"),
    ("fit_seconds", "fit s", "{:.1f}"),
)

# metrics copied from each split into the row (as <split>_<metric>)
ROW_METRICS = (
    "accuracy", "balanced_accuracy", "macro_f1", "log_loss",
    "ic", "rank_ic", "icir", "rank_icir", "ic_tstat", "ic_tstat_nw", "rank_ic_tstat_nw",
    "sharpe", "annual_return", "max_drawdown", "win_rate", "turnover", "bench_sharpe",
)


@dataclass(frozen=True)
class Item:
    """One model at one horizon, with what its stages wrote."""

    model: str
    family: str
    horizon: int
    metrics: dict  # evaluate's metrics.json: {"val": {...}, "test": {...}}
    fit_seconds: float | None


def compare_rows(items: list[Item]) -> dict[str, dict]:
    """``{"<model>-h<h>": row}`` for metrics/compare.json (numbers or None, plus model/family/horizon)."""
    rows = {}
    for it in items:
        row: dict = {"model": it.model, "family": it.family, "horizon": it.horizon}
        for split in ("val", "test"):
            m = it.metrics.get(split, {})
            for key in ROW_METRICS:
                row[f"{split}_{key}"] = _num(m.get(key))
        row["fit_seconds"] = _num(it.fit_seconds)
        rows[f"{it.model}-h{it.horizon}"] = row
    return rows


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else round(v, 6)


def _sort_key(row: dict) -> float:
    v = row.get("test_rank_ic")
    return -v if v is not None else math.inf  # undefined Rank IC (constant scores) sorts last


def rows_of_horizon(rows: dict[str, dict], horizon: int) -> list[dict]:
    """The rows of one horizon, best test Rank IC first (undefined last)."""
    return sorted((r for r in rows.values() if int(r["horizon"]) == horizon), key=_sort_key)


def best_baseline(rows: list[dict]) -> dict | None:
    """The baseline with the highest test Rank IC (None if no baseline has one)."""
    base = [r for r in rows if r["family"] == BASELINE_FAMILY and r.get("test_rank_ic") is not None]
    return max(base, key=lambda r: r["test_rank_ic"]) if base else None


def score_correlations(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Spearman correlation of the models' scores on the (symbol, datetime) rows they share.

    ``predictions``: model -> frame with symbol, datetime, score. Constant scores give NaN."""
    keyed = {m: f.set_index(["symbol", "datetime"])["score"] for m, f in predictions.items()}
    wide = pd.DataFrame(keyed).dropna()
    ranks = wide.rank()
    return ranks.corr(method="pearson")  # Spearman = Pearson on ranks


def _fmt(v, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def comparison_markdown(rows: dict[str, dict], correlations: dict[int, pd.DataFrame], cost_bps: float, title_note: str = "") -> str:
    """The comparison page (see module docstring)."""
    horizons = sorted({int(r["horizon"]) for r in rows.values()})
    lines = [
        "# Model comparison",
        "",
        "Test split unless marked *val*; models sorted by test Rank IC. IC and Rank IC are daily "
        "cross-sectional correlations of the score with the realised h-bar forward return, "
        "averaged over dates; *t (NW)* and *IC t (NW)* are their t-statistics with a Newey–West "
        f"standard error (the h-bar returns overlap, so plain t-statistics overstate). *Sharpe (net)*: a dollar-neutral long/short book on the "
        f"score, each day's signal held h bars in 1/h tranches, after {cost_bps:g} bp per unit of "
        "turnover. Baselines are in *italics*; *Δ Rank IC* is each model's lead over the best "
        "baseline.",
    ]
    if title_note:
        lines += ["", title_note]
    summary = []
    for h in horizons:
        hr = rows_of_horizon(rows, h)
        base = best_baseline(hr)
        lines += ["", f"## Horizon {h} bars", ""]
        header = ["model", "family", *(t for _, t, _ in TABLE_COLUMNS), "Δ Rank IC"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in hr:
            name = f"*{r['model']}*" if r["family"] == BASELINE_FAMILY else f"**{r['model']}**"
            delta = None
            if base is not None and r.get("test_rank_ic") is not None and r is not base:
                delta = r["test_rank_ic"] - base["test_rank_ic"]
            cells = [name, r["family"], *(_fmt(r.get(k), f) for k, _, f in TABLE_COLUMNS), _fmt(delta, "{:+.4f}")]
            lines.append("| " + " | ".join(cells) + " |")
        contenders = [r for r in hr if r["family"] != BASELINE_FAMILY and r.get("test_rank_ic") is not None]
        if contenders:
            best = contenders[0]
            verdict = (
                f"**Best at h={h}: {best['model']}** — test Rank IC {best['test_rank_ic']:+.4f} "
                f"(NW t {_fmt(best.get('test_rank_ic_tstat_nw'), '{:+.2f}')}), Sharpe {_fmt(best.get('test_sharpe'), '{:+.2f}')} net"
            )
            if base is not None:
                lead = best["test_rank_ic"] - base["test_rank_ic"]
                beaten = [r["model"] for r in contenders if r["test_rank_ic"] > base["test_rank_ic"]]
                verdict += (
                    f"; best baseline {base['model']} {base['test_rank_ic']:+.4f}, lead {lead:+.4f}. "
                    f"Above the best baseline: {', '.join(beaten) if beaten else 'none'}"
                )
            significant = [r["model"] for r in contenders if (r.get("test_rank_ic_tstat_nw") or 0.0) > SIGNIFICANT_T]
            verdict += f"; Rank IC significantly above zero (NW t > {SIGNIFICANT_T:g}): {', '.join(significant) if significant else 'none'}."
            lines += ["", verdict]
            summary.append(verdict)
        corr = correlations.get(h)
        if corr is not None and len(corr) > 1:
            lines += ["", f"Score correlation between models (Spearman, test, h={h}): low values mean diverse signals, worth ensembling.", ""]
            cols = list(corr.columns)
            lines += ["| | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
            for a in cols:
                vals = [("n/a" if not np.isfinite(corr.loc[a, b]) else f"{corr.loc[a, b]:+.2f}") for b in cols]
                lines.append(f"| {a} | " + " | ".join(vals) + " |")
    if summary:
        lines[1:1] = ["", *(f"- {s}" for s in summary)]
    return "\n".join(lines) + "\n"
