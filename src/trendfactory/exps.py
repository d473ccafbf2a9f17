"""Experiments side by side in a terminal: ``trendfactory exps``.

``dvc exp show`` prints every param and every metric of every file (690 columns on the default
run), so each cell reads ``…``. This table keeps what a researcher compares after
``dvc exp run -S``: one row per commit or experiment, the params that differ between the rows
first, then each horizon's verdict (the model chosen for the last fold, stitched Rank IC, its p,
whether it survives), then the Rank IC of the items that moved, largest spread first -- column
by column until ``width`` is full; what did not fit is named under the table.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from trendfactory.errors import TrendfactoryError
from trendfactory.report import dvc_json

PARAMS_FILE = "params.yaml"
SUMMARY_FILE = re.compile(r"^metrics/summary/h(?P<h>\d+)\.json$")
ITEM_FILE = re.compile(r"^metrics/eval/(?P<item>[^/]+)\.json$")
VERDICT = (("pick", "selected", "{}"), ("rIC", "rank_ic", "{:+.4f}"), ("p", "rank_ic_p", "{:.3f}"), ("ok", "survives", "{}"))
WIDTH = 160


@dataclass
class Row:
    """One commit or experiment of ``dvc exp show --json``: its label, flat params and metrics."""

    label: str
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)  # metrics file -> its data


def flat_params(tree: dict, prefix: str = "") -> dict[str, object]:
    """A params tree as dotted keys (``models.xgboost.max_depth``) to values."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _row(record: dict, label: str) -> Row:
    data = record.get("data") or {}
    params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {}
    metrics = {f: (m or {}).get("data") or {} for f, m in (data.get("metrics") or {}).items()}
    return Row(label, flat_params(params), metrics)


def rows_from_exp_show(records: list[dict]) -> list[Row]:
    """The rows of ``dvc exp show --json``: the workspace, each commit and, under it, its
    experiments (named ``  name``); queued or failed experiments without data are skipped."""
    rows = []
    for record in records:
        name = record.get("name") or record.get("rev", "?")[:7]
        if record.get("data"):
            rows.append(_row(record, name if record.get("rev") != "workspace" else "workspace"))
        for exp in record.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("data") and not rev.get("error"):
                    rows.append(_row(rev, "  " + (rev.get("name") or exp.get("name") or rev.get("rev", "?")[:7])))
    return rows


def _fmt(value, fmt: str = "{}") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _short(key: str) -> str:
    """A param's column title: its last two parts (``models.xgboost.max_depth`` -> ``xgboost.max_depth``)."""
    return ".".join(key.split(".")[-2:])


def columns(rows: list[Row]) -> list[tuple[str, list[str]]]:
    """Every candidate column, in the order they are shown: changed params, each horizon's
    verdict, then each moved item's Rank IC (largest spread across the rows first)."""
    cols: list[tuple[str, list[str]]] = []
    keys = list(dict.fromkeys(k for r in rows for k in r.params))
    for key in keys:
        values = [r.params.get(key) for r in rows]
        if any(v != values[0] for v in values):
            cols.append((_short(key), [_fmt(v) for v in values]))
    files = list(dict.fromkeys(f for r in rows for f in r.metrics))
    for f in sorted((f for f in files if SUMMARY_FILE.match(f)), key=lambda f: int(SUMMARY_FILE.match(f)["h"])):
        h = SUMMARY_FILE.match(f)["h"]
        for title, key, fmt in VERDICT:
            cols.append((f"h{h} {title}", [_fmt(r.metrics.get(f, {}).get(key), fmt) for r in rows]))
    moved = []
    for f in files:
        match = ITEM_FILE.match(f)
        values = [r.metrics.get(f, {}).get("rank_ic") for r in rows]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if match and len(set(values)) > 1:
            spread = (max(numbers) - min(numbers)) if numbers else math.inf  # an item new or gone: first
            moved.append((-spread, match["item"], [_fmt(v, "{:+.4f}") for v in values]))
    cols += [(f"{item} rIC", cells) for _, item, cells in sorted(moved)]
    return cols


def render(rows: list[Row], width: int = WIDTH) -> str:
    """The table, at most ``width`` characters wide, and a line naming the columns left out."""
    if not rows:
        return "no experiments: run `dvc exp run -S key=value` first (`dvc exp show` lists none)"
    labels = [r.label for r in rows]
    shown: list[tuple[str, list[str]]] = [("experiment", labels)]
    used = max(len(s) for s in ["experiment", *labels])
    left_out = []
    for title, cells in columns(rows):
        w = max(len(s) for s in [title, *cells])
        if used + 2 + w <= width:
            shown.append((title, cells))
            used += 2 + w
        else:
            left_out.append(title)
    widths = [max(len(s) for s in [t, *c]) for t, c in shown]
    lines = ["  ".join(t.ljust(w) for (t, _), w in zip(shown, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for i in range(len(rows)):
        lines.append("  ".join(c[i].ljust(w) for (_, c), w in zip(shown, widths)).rstrip())
    if len(shown) == 1:
        lines.append("(no param or metric differs between these rows)")
    if left_out:
        note = f"not shown ({len(left_out)} columns past {width} characters): {', '.join(left_out[:12])}" + (", ..." if len(left_out) > 12 else "") + " -- widen with --width"
        lines += textwrap.wrap(note, max(width, 40), subsequent_indent="  ")
    return "\n".join(lines)


def show(repo: Path = Path("."), width: int = WIDTH, dvc_args: list[str] | None = None) -> str:
    """Run ``dvc exp show --json`` in ``repo`` and render its rows."""
    result = dvc_json(["exp", "show", "--json", *(dvc_args or [])], repo)
    if result.error:
        raise TrendfactoryError(result.error)
    records = result.data if isinstance(result.data, list) else []
    return render(rows_from_exp_show(records), width)
