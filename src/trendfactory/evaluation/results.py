"""The README's results section, written from metrics/compare.json and nothing else.

Why: prose typed by hand goes stale the first time a result moves (a p-value quoted from the
previous run, an item under 0.05 nobody mentioned). Every figure between the README's two
markers is rendered here from the comparison's own file; the compare stage rewrites the section
after each run, ``trendfactory results`` does it on demand (``--check`` only compares), and a
test fails when the committed README and compare.json disagree. Hand-written text outside the
markers may explain, never quote a figure.
"""

from __future__ import annotations

import math
from pathlib import Path

from trendfactory.errors import TrendfactoryError
from trendfactory.paths import item_id

BEGIN = "<!-- results:begin: generated from metrics/compare.json by the compare stage (or `trendfactory results`); do not edit by hand -->"
END = "<!-- results:end -->"
ALPHA = 0.05


def fmt_value(v, fmt: str) -> str:
    """``v`` formatted, or n/a when it is missing or not finite."""
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def fmt_ci(lo, hi, fmt: str) -> str:
    """`` [lo, hi]`` formatted, or nothing when a bound is missing."""
    return "" if lo is None or hi is None else f" [{fmt.format(lo)}, {fmt.format(hi)}]"


def _horizon_row(h: int, s: dict) -> str:
    sel, base = s.get("selection") or {}, s.get("baseline") or {}
    folds = ", ".join(f"{c['chosen'] or 'none'} ({fmt_value(c['val_rank_ic'], '{:+.4f}')}){' ~' if c.get('coin_flip') else ''}" for c in s.get("folds", []))
    verdict = "**survives**" if s.get("survives") else "does not survive"
    return (
        f"| {h} | {folds} | {fmt_value(sel.get('rank_ic'), '{:+.4f}')}{fmt_ci(sel.get('rank_ic_lo'), sel.get('rank_ic_hi'), '{:+.4f}')} "
        f"| {fmt_value(sel.get('rank_ic_t'), '{:+.2f}')} ({fmt_value(sel.get('rank_ic_p'), '{:.3f}')}) "
        f"| {fmt_value(sel.get('sharpe'), '{:+.2f}')}{fmt_ci(sel.get('sharpe_lo'), sel.get('sharpe_hi'), '{:+.2f}')} "
        f"| {base.get('selected') or 'n/a'} ({fmt_value(base.get('rank_ic'), '{:+.4f}')}) | {fmt_value(s.get('spa_p'), '{:.3f}')} "
        f"| {fmt_value(s.get('dsr'), '{:.2f}')} | {fmt_value(s.get('detectable_rank_ic'), '{:.4f}')} | {verdict} |"
    )


def run_facts(compare: dict) -> tuple[int, str, int, int]:
    """(folds, out-of-sample span, seeds, non-baseline items) of a comparison, as its pages quote them."""
    summary, items = compare["summary"], compare["items"]
    horizons = sorted(int(k[1:]) for k in summary)
    blocks = [c["test"] for c in summary[f"h{horizons[0]}"].get("folds", []) if c.get("test")] if horizons else []
    span = f"{blocks[0][0]} … {blocks[-1][1]}" if blocks else "n/a"
    seeds = max((int(r.get("seeds") or 1) for r in items.values()), default=1)
    n_items = sum(1 for r in items.values() if r.get("family") != "baseline")
    return len(blocks), span, seeds, n_items


def results_section(compare: dict) -> str:
    """The Markdown between the markers: the verdict table per horizon and plain sentences, every
    number taken from ``compare`` (metrics/compare.json's content)."""
    n_folds, span, seeds, n_items = run_facts(compare)
    lines = [
        BEGIN,
        "",
        f"From [`metrics/compare.json`](metrics/compare.json) (page: [`metrics/comparison.md`](metrics/comparison.md)): "
        f"walk-forward, {n_folds} folds, out of sample {span}; stochastic models fitted with {seeds} seeds (their "
        f"mean); {n_items} non-baseline model × horizon items tried. Each fold's model is chosen on validation blocks "
        "that end before its test block; the figures are those of the stitched out-of-sample series of the folds' choices.",
        "",
        *verdict_lines(compare),
        "",
        END,
    ]
    return "\n".join(lines)


def verdict_lines(compare: dict) -> list[str]:
    """The verdict table (one row per horizon) and the plain sentences under it."""
    # Long on purpose: the verdict, paragraph by paragraph, in reading order.
    summary, items = compare["summary"], compare["items"]
    horizons = sorted(int(k[1:]) for k in summary)
    n_items = run_facts(compare)[3]
    lines = [
        "| h | chosen per fold (val Rank IC; ~ coin flip) | stitched test Rank IC [90 % CI] | t (p) | Sharpe net [90 % CI] "
        "| baseline per fold (test Rank IC) | SPA p | deflated Sharpe | detectable Rank IC (80 % power) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_horizon_row(h, summary[f"h{h}"]) for h in horizons]
    lines.append("")
    survivors = [h for h in horizons if summary[f"h{h}"].get("survives")]
    if survivors:
        lines.append(f"**Plainly:** the walk-forward selection survives every check at h = {', '.join(map(str, survivors))}.")
    else:
        lines.append(
            "**Plainly: nothing survives.** At no horizon does the walk-forward selection pass every check "
            "(significant positive Rank IC, a significant lead over the walk-forward baseline, SPA, the model confidence set, "
            "the deflated Sharpe ratio)."
        )
    for h in horizons:
        s = summary[f"h{h}"]
        sel = s.get("selection") or {}
        parts = []
        if s.get("detectable_rank_ic") is not None:
            parts.append(f"only a mean Rank IC above {s['detectable_rank_ic']:.4f} would have shown with 80 % probability (the selection's own is {fmt_value(sel.get('rank_ic'), '{:+.4f}')})")
        flips = [c for c in s.get("folds", []) if c.get("coin_flip")]
        if flips:
            parts.append(
                "the choice is a coin flip in fold"
                + ("s " if len(flips) > 1 else " ")
                + ", ".join(f"{c['fold']} ({c['chosen']} vs {c['runner_up']})" for c in flips)
                + ": the lead on validation is smaller than the seed spread"
            )
        best = s.get("test_best")
        if best and item_id(best, h) in items:
            r = items[item_id(best, h)]
            parts.append(
                f"the best single model on test, {best} (Rank IC {fmt_value(r.get('test_rank_ic'), '{:+.4f}')}, "
                f"p {fmt_value(r.get('test_rank_ic_p'), '{:.3f}')}), is shown for reference only: picking it would be "
                "selection on test"
            )
        if parts:
            lines.append(f"At h = {h}: " + "; ".join(parts) + ".")
    low = sorted(
        (r for r in items.values() if r.get("family") != "baseline" and r.get("test_rank_ic_p") is not None and r["test_rank_ic_p"] < ALPHA and (r.get("test_rank_ic") or 0) > 0),
        key=lambda r: r["test_rank_ic_p"],
    )
    if low:
        names = ", ".join(f"{r['model']} at h = {r['horizon']} (p {r['test_rank_ic_p']:.3f})" for r in low)
        lines.append(
            f"Single items with a positive test Rank IC at p < {ALPHA:g}: {names} — of {n_items} items tried, "
            f"about {n_items * ALPHA:.1f} are expected below {ALPHA:g} by chance alone; they are listed, not claimed."
        )
    else:
        lines.append(f"No single item of the {n_items} tried has a positive test Rank IC at p < {ALPHA:g}.")
    return lines


def _split(text: str, readme: Path) -> tuple[str, str, str]:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise TrendfactoryError(f"{readme}: expected one results section between the markers {BEGIN!r} and {END!r}; put them back")
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    return head, BEGIN + body + END, tail


def render_readme(readme_text: str, compare: dict, readme: Path = Path("README.md")) -> str:
    """``readme_text`` with its results section rendered from ``compare``."""
    head, _, tail = _split(readme_text, readme)
    return head + results_section(compare) + tail


def has_section(readme: Path) -> bool:
    return readme.is_file() and BEGIN in readme.read_text()


def update_readme(readme: Path, compare_json: Path, check: bool = False) -> bool:
    """Render ``readme``'s results section from ``compare_json``; True when it changed (with
    ``check``: nothing is written, True means the README is stale)."""
    from trendfactory.io import atomic_path, read_json

    if not compare_json.is_file():
        raise TrendfactoryError(f"{compare_json}: missing; run `dvc repro compare` (or `dvc pull`) first")
    text = readme.read_text()
    new = render_readme(text, read_json(compare_json), readme)
    if new == text:
        return False
    if not check:
        with atomic_path(readme) as tmp:
            tmp.write_text(new)
    return True
