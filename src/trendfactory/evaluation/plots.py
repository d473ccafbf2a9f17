"""PNG plots of the comparison (matplotlib, headless): metric bars, equity curves, score
correlations, one set per horizon. Baselines are drawn in grey so the eye finds them at once."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def close(fig) -> None:
    _plt().close(fig)


DPI = 110


def to_image(fig):
    """The figure as a 256-colour palette image (a PIL ``Image``).

    Line plots and heatmaps need far fewer than 256 colours; the palette PNG is about a third of
    matplotlib's RGBA one, which keeps the ``dvc plots show`` page small (no dithering: crisp
    lines compress better and read better)."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)


def save_png(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as a palette PNG (see ``to_image``) and close it."""
    to_image(fig).save(path, format="PNG", optimize=True)
    close(fig)


LINE_STYLES = ("-", "--", "-.", ":")


def line_styles(names: list[str], families: dict[str, str]) -> dict[str, dict]:
    """A distinct look per line: colour *and* dash pattern, so that two dozen models stay apart
    (a 10-colour cycle gives two lines one blue) -- tab20's colours for the models, its grey
    shades, dashed, for the baselines."""
    plt = _plt()
    # tab20 without its two greys (kept for the baselines): 18 colours; with 4 dash patterns, 72 lines
    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]
    greys = ("#7f7f7f", "#a6a6a6", "#4d4d4d")
    styles, m, b = {}, 0, 0
    for name in names:
        if families.get(name) == "baseline":
            styles[name] = {"color": greys[b % len(greys)], "ls": "--", "lw": 1.0}
            b += 1
        else:
            styles[name] = {"color": palette[m % len(palette)], "ls": LINE_STYLES[(m // len(palette) + m) % len(LINE_STYLES)], "lw": 1.2}
            m += 1
    return styles


def by_year_heatmap(daily_rank_ic: pd.DataFrame, families: dict[str, str], horizon: int, path: Path) -> None:
    """Model x year heatmap of the mean daily Rank IC (``daily_rank_ic``: dates x models, in
    table order): is a model's edge steady, or one good year?"""
    plt = _plt()
    years = daily_rank_ic.groupby(daily_rank_ic.index.year).mean().T  # [models, years]
    fig, ax = plt.subplots(figsize=(0.62 * years.shape[1] + 3.2, 0.42 * len(years) + 1.6))
    lim = max(float(np.nanmax(np.abs(years.to_numpy()))) if np.isfinite(years.to_numpy()).any() else 0.05, 1e-3)
    im = ax.imshow(years.to_numpy(dtype=float), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(years.shape[1]), [str(y) for y in years.columns], rotation=45, ha="right")
    ax.set_yticks(range(len(years)), [f"{m} (baseline)" if families.get(m) == "baseline" else m for m in years.index])
    for i in range(years.shape[0]):
        for j in range(years.shape[1]):
            v = years.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v * 100:+.1f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 * lim else "black")
    fig.colorbar(im, ax=ax, fraction=0.03, label="mean daily Rank IC")
    ax.set_title(f"Out-of-sample Rank IC by year (x100), h={horizon}; rows sorted by validation Rank IC", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def cumulative_ic(daily_rank_ic: pd.DataFrame, families: dict[str, str], selected: str | None, horizon: int, path: Path) -> None:
    """Cumulative sum of each model's daily out-of-sample Rank IC: a steady edge is a straight
    rising line; the model selected on validation is drawn thick."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5))
    styles = line_styles(list(daily_rank_ic.columns), families)
    for model in daily_rank_ic.columns:
        series = daily_rank_ic[model].dropna()
        if series.empty:
            continue
        style = {**styles[model], **({"lw": 2.6, "ls": "-"} if model == selected else {})}
        label = f"{model} (selected on validation)" if model == selected else model
        ax.plot(series.index, series.cumsum(), label=label, **style)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title(f"Cumulative daily Rank IC, out of sample, h={horizon}")
    ax.set_ylabel("sum of daily Rank IC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    save_png(fig, path)


def equity_figure(books: dict[str, pd.DataFrame], families: dict[str, str], title: str):
    """A matplotlib figure: cumulative net return of each model's long/short book (left axis)
    and the equal-weight buy-and-hold of the universe on its own right-hand axis, so that the
    benchmark's much larger moves do not flatten the books near zero (the caller saves and
    closes it)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 6.2))
    styles = line_styles(list(books), families)
    bench = None
    for model, book in books.items():
        ax.plot(book.index, book["net"].cumsum(), label=f"{model} long/short, net", **styles[model])
        bench = book["bench"] if bench is None else bench
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title(f"{title}: cumulative return after costs")
    ax.set_ylabel("long/short book: cumulative return (sum of daily returns)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if bench is not None:
        right = ax.twinx()
        (line,) = right.plot(bench.index, bench.cumsum(), color="black", lw=1.8, label="equal-weight buy-and-hold (right axis)")
        right.set_ylabel("buy-and-hold: cumulative return")
        handles, labels = handles + [line], labels + [line.get_label()]
    # below the axes: with a full run list a legend inside would cover the lines
    ax.legend(handles, labels, fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    return fig


def equity_curves(books: dict[str, pd.DataFrame], families: dict[str, str], horizon: int, path: Path) -> None:
    """Every model's book at one horizon in one PNG."""
    fig = equity_figure(books, families, f"Out of sample (all folds), horizon {horizon}")
    save_png(fig, path)


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
    save_png(fig, path)


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
