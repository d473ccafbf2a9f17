"""PNG plots of the comparison (matplotlib, headless): metric bars, equity curves, score
correlations, one set per horizon. Baselines are drawn in grey so the eye finds them at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BARS = (
    ("test_rank_ic", "test Rank IC"),
    ("test_ic_tstat_nw", "test IC t-stat (Newey–West)"),
    ("test_sharpe", "test Sharpe after costs"),
    ("test_balanced_accuracy", "test balanced accuracy"),
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def close(fig) -> None:
    _plt().close(fig)


def _colors(families: list[str]) -> list[str]:
    return ["#9e9e9e" if f == "baseline" else "#1f77b4" for f in families]


def metric_bars(rows: list[dict], horizon: int, path: Path) -> None:
    """One panel per headline metric, a bar per model (sorted as the table is)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(BARS), figsize=(4.2 * len(BARS), 0.45 * len(rows) + 1.8), sharey=True)
    names = [r["model"] for r in rows]
    colors = _colors([r["family"] for r in rows])
    for ax, (key, title) in zip(axes, BARS):
        vals = [np.nan if r.get(key) is None else r[key] for r in rows]
        ax.barh(names, vals, color=colors)
        ax.axvline(1 / 3 if key == "test_balanced_accuracy" else 0.0, color="black", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis() if ax is axes[0] else None
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Horizon {horizon} bars (grey: baselines; line: chance)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def equity_figure(books: dict[str, pd.DataFrame], families: dict[str, str], title: str):
    """A matplotlib figure: cumulative net return of each model's long/short book, with the
    equal-weight buy-and-hold of the universe (the caller saves and closes it)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5))
    bench = None
    for model, book in books.items():
        style = {"color": "#9e9e9e", "ls": "--"} if families.get(model) == "baseline" else {}
        ax.plot(book.index, book["net"].cumsum(), lw=1.2, label=f"{model} long/short, net", **style)
        bench = book["bench"] if bench is None else bench
    if bench is not None:
        ax.plot(bench.index, bench.cumsum(), color="black", lw=1.5, label="equal-weight buy-and-hold")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title(f"{title}: cumulative return after costs")
    ax.set_ylabel("cumulative return (sum of daily returns)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def equity_curves(books: dict[str, pd.DataFrame], families: dict[str, str], horizon: int, path: Path) -> None:
    """Every model's book at one horizon in one PNG."""
    fig = equity_figure(books, families, f"Test split, horizon {horizon}")
    fig.savefig(path, dpi=110)
    close(fig)


def correlation_heatmap(corr: pd.DataFrame, horizon: int, path: Path) -> None:
    """Spearman correlation of model scores (NaN for constant scores shows blank)."""
    plt = _plt()
    n = len(corr)
    fig, ax = plt.subplots(figsize=(1.0 * n + 2.5, 0.9 * n + 1.8))
    im = ax.imshow(corr.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), corr.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), corr.index)
    for i in range(n):
        for j in range(n):
            v = corr.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(f"Score correlation between models (test, h={horizon})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def embedding_figure(points: np.ndarray, color: np.ndarray, title: str, color_label: str):
    """A scatter of 2-D points (one per date) coloured by a regime variable (the caller closes it)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6))
    lim = np.nanpercentile(np.abs(color), 98) if np.isfinite(color).any() else 1.0
    sc = ax.scatter(points[:, 0], points[:, 1], c=color, cmap="RdYlGn", vmin=-lim, vmax=lim, s=8, alpha=0.8)
    fig.colorbar(sc, ax=ax, label=color_label)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
