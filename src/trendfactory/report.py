"""Pull-request checks: the metrics report a PR comment can carry, and the stale-lock check.

    python -m trendfactory.report [--base main] [--output FILE] [--full FILE] [--limit 60000]
    python -m trendfactory.report --check-lock

The report compares this checkout's git-tracked metrics and params with ``--base``
(``dvc metrics diff --all --json``, ``dvc params diff --json``) and writes Markdown that always
fits in one GitHub comment (at most ``--limit`` characters, whatever the change):

1. the verdict per horizon before -> after (``metrics/summary/h<h>.json``: each fold's model
   chosen walk-forward on validation, the stitched out-of-sample Rank IC and its calibrated HAR
   t, whether it survives);
2. one row per model x horizon whose headline numbers moved (``metrics/eval/<item>.json``: test
   and validation Rank IC, the calibrated HAR t, net Sharpe), largest move of test Rank IC
   first, with a flag where the change matters: its p-value crossed 0.05 (files without a p:
   |t| crossed 1.96), or the item is new or gone;
3. the params that changed;
4. every changed metric, folded in ``<details>`` and cut where the limit would be passed, with a
   pointer to the job summary (``--full`` writes the uncut report there).

``--check-lock`` fails in seconds, without any data, when ``dvc.lock`` is stale for the code or
params of this checkout: a stage whose code or params changed but whose results were not
regenerated and committed (``dvc status`` lists its code or params as modified; the data
outputs, absent in a bare clone, are ignored).

Exits 1 when a dvc command failed (the report, still written, says which one and why) or when
the lock is stale.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- trendfactory-pr-report -->"  # lets the workflow find and update its own comment
COMMENT_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters
SUMMARY_LIMIT = 900_000  # a job summary may hold up to 1 MiB
ITEM_FILE = re.compile(r"^metrics/eval/(?P<item>[^/]+)\.json$")  # an item's headline numbers
SUMMARY_FILE = re.compile(r"^metrics/summary/(?P<h>h\d+)\.json$")  # the verdict of one horizon
ALPHA = 0.05  # a p-value below this is "significant" in the flags
T_CRITICAL = 1.96  # for metrics files written before the headline p existed
HEADLINE = (  # (column title, key in metrics/eval/<item>.json, format)
    ("test Rank IC", "rank_ic", "{:+.4f}"),
    ("t (HAR)", "rank_ic_t", "{:+.2f}"),
    ("val Rank IC", "val_rank_ic", "{:+.4f}"),
    ("Sharpe net", "sharpe", "{:+.2f}"),
)
Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class Diff:
    """One dvc diff: ``{file: {key: {"old": .., "new": ..}}}``, or the error that stopped it."""

    data: dict
    error: str | None = None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def dvc_json(args: list[str], repo: Path, run: Runner = subprocess.run) -> Diff:
    """Run `dvc ARGS` in ``repo`` and parse its JSON output (or say in one line why not)."""
    cmd = [sys.executable, "-m", "dvc", *args]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        proc = run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        return Diff({}, f"`dvc {' '.join(args)}` failed: {exc}")
    if proc.returncode != 0:
        return Diff({}, f"`dvc {' '.join(args)}` failed: {_last_line(proc.stderr or '') or f'exit code {proc.returncode}'}")
    try:
        return Diff(json.loads(proc.stdout or "{}") or {})
    except json.JSONDecodeError:
        return Diff({}, f"`dvc {' '.join(args)}` printed no JSON: {_last_line(proc.stdout or '')[:200]}")


def _changed(entry: dict) -> bool:
    return entry.get("old") != entry.get("new")


def _fmt(v, fmt: str = "{}") -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    try:
        return fmt.format(v)
    except (TypeError, ValueError):
        return str(v)


def _cell(old, new, fmt: str) -> str:
    return _fmt(new, fmt) if old == new else f"{_fmt(old, fmt)} → {_fmt(new, fmt)}"


def _significant(t, p=None) -> bool | None:
    """p < 0.05 where the file has the HAR p-value, else |t| >= 1.96; None without either."""
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        return p < ALPHA
    return None if not isinstance(t, (int, float)) else abs(t) >= T_CRITICAL


def verdict_section(metrics: dict) -> list[str]:
    """The per-horizon verdict before -> after, from metrics/summary/h<h>.json."""
    summaries = {m["h"]: keys for f, keys in metrics.items() if (m := SUMMARY_FILE.match(f))}
    if not summaries:
        return []
    lines = ["### Verdict", "", "| horizon | chosen per fold on validation | stitched test Rank IC | HAR t | survives |", "|---|---|---|---|---|"]
    for h in sorted(summaries, key=lambda h: int(h[1:])):
        get = summaries[h].get
        cells = [_cell((get(k) or {}).get("old"), (get(k) or {}).get("new"), f) for k, f in (("selected", "{}"), ("rank_ic", "{:+.4f}"), ("rank_ic_t", "{:+.2f}"), ("survives", "{}"))]
        lines.append(f"| {h} | " + " | ".join(cells) + " |")
    return lines + [""]


def headline_section(metrics: dict) -> list[str]:
    """One row per model x horizon whose headline numbers moved, largest |Δ test Rank IC| first."""
    rows = []
    for f, keys in metrics.items():
        m = ITEM_FILE.match(f)
        if not m:
            continue
        entries = [keys.get(k, {}) for _, k, _ in HEADLINE]
        if not any(_changed(e) for e in entries if e):
            continue
        ric, t, p = keys.get("rank_ic", {}), keys.get("rank_ic_t", {}), keys.get("rank_ic_p", {})
        old, new = ric.get("old"), ric.get("new")
        delta = new - old if isinstance(old, (int, float)) and isinstance(new, (int, float)) else None
        flags = []
        if all(e.get("old") is None for e in entries):
            flags.append("new")
        elif all(e.get("new") is None for e in entries):
            flags.append("gone")
        elif _significant(t.get("old"), p.get("old")) != _significant(t.get("new"), p.get("new")):
            flags.append(f"⚑ {'now' if _significant(t.get('new'), p.get('new')) else 'no longer'} significant (p < {ALPHA:g})")
        rows.append((abs(delta) if delta is not None else math.inf, m["item"], entries, delta, flags))
    if not rows:
        return ["### Models", "", "No model's headline numbers moved.", ""]
    rows.sort(key=lambda r: (-r[0], r[1]))
    head = "| item | " + " | ".join(t for t, _, _ in HEADLINE) + " | Δ test Rank IC | flag |"
    lines = ["### Models: headline numbers before → after (largest moves first)", "", head, "|" + "---|" * (len(HEADLINE) + 3)]
    for _, item, entries, delta, flags in rows:
        cells = [_cell(e.get("old"), e.get("new"), f) for e, (_, _, f) in zip(entries, HEADLINE)]
        lines.append(f"| {item} | " + " | ".join(cells) + f" | {_fmt(delta, '{:+.4f}')} | {', '.join(flags)} |")
    return lines + [""]


def params_section(params: Diff) -> list[str]:
    if params.error:
        return ["### Params", "", f"**{params.error}**", ""]
    rows = [(f, k, e) for f, keys in sorted(params.data.items()) for k, e in sorted(keys.items()) if _changed(e)]
    if not rows:
        return ["### Params", "", "No params changes.", ""]
    lines = ["### Params", "", "| file | param | old | new |", "|---|---|---|---|"]
    lines += [f"| {f} | {k} | {_fmt(e.get('old'))} | {_fmt(e.get('new'))} |" for f, k, e in rows]
    return lines + [""]


def _decimals(v) -> int:
    """Decimal places of a number as written in its metrics file (0.0123 -> 4)."""
    text = repr(v)
    if "e" in text.lower():
        mantissa, exp = text.lower().split("e")
        return max(len(mantissa.split(".")[1]) if "." in mantissa else 0, 0) - int(exp)
    return len(text.split(".")[1]) if "." in text else 0


def _delta(e: dict):
    """new - old at the precision the two values are written with: the metrics files round to
    6 places, so dvc's raw difference carries float noise (0.00014999999999998348)."""
    old, new = e.get("old"), e.get("new")
    num = (int, float)
    if isinstance(old, num) and isinstance(new, num) and not isinstance(old, bool) and not isinstance(new, bool):
        if not (math.isfinite(old) and math.isfinite(new)):
            return e.get("diff")
        return round(new - old, min(max(_decimals(old), _decimals(new)), 12))
    return e.get("diff")


def detail_rows(metrics: dict) -> list[str]:
    """Every changed metric as a table row, sorted by file and key, Δ rounded to the values' precision."""
    rows = []
    for f in sorted(metrics):
        for k in sorted(metrics[f]):
            e = metrics[f][k]
            if _changed(e):
                rows.append(f"| {f} | {k} | {_fmt(e.get('old'))} | {_fmt(e.get('new'))} | {_fmt(_delta(e))} |")
    return rows


def collect(base: str = "main", repo: Path = Path("."), run: Runner = subprocess.run) -> tuple[Diff, Diff]:
    """The metrics diff (every key, changed or not) and the params diff against ``base``."""
    return (dvc_json(["metrics", "diff", base, "--all", "--json"], repo, run), dvc_json(["params", "diff", base, "--json"], repo, run))


def render(metrics: Diff, params: Diff, base: str, limit: int = COMMENT_LIMIT) -> str:
    """The Markdown report of two diffs, at most ``limit`` characters."""
    head = [
        MARKER,
        f"## trendfactory: this change vs `{base}`",
        "",
        f"Old values are from `{base}`, new ones from this checkout: the verdict from `metrics/summary/h<h>.json`, "
        "each model's headline numbers from `metrics/eval/<item>.json`; every changed metric is in the details below.",
        "",
    ]
    body = verdict_section(metrics.data) + headline_section(metrics.data) if not metrics.error else ["### Metrics", "", f"**{metrics.error}**", ""]
    body += params_section(params)
    rows = detail_rows(metrics.data)
    text = "\n".join(head + body)
    if rows:
        open_ = f"<details><summary>All {len(rows):,} changed metrics</summary>\n\n| file | metric | old | new | Δ |\n|---|---|---|---|---|\n"
        close = "\n</details>\n"
        cut_note = f"\n</details>\n\n**Cut here:** {{n:,}} more changed metrics did not fit in a comment; the job summary has them all, or run `dvc metrics diff {base}`.\n"
        budget = limit - len(text) - len(open_) - len(cut_note) - 20
        kept, used = [], 0
        for r in rows:
            if used + len(r) + 1 > budget:
                break
            kept.append(r)
            used += len(r) + 1
        text += "\n" + open_ + "\n".join(kept) + (close if len(kept) == len(rows) else cut_note.format(n=len(rows) - len(kept)))
    elif not metrics.error:
        text += "\nNo metrics changes.\n"
    if len(text) > limit:  # the fixed sections alone are over (thousands of items): cut them too
        note = "\n\n**Cut here:** the report is longer than a comment may be; the job summary has it all.\n"
        text = text[: limit - len(note)] + note
    return text


def build_report(base: str = "main", repo: Path = Path("."), run: Runner = subprocess.run, limit: int = COMMENT_LIMIT) -> tuple[str, bool]:
    """The Markdown report (at most ``limit`` characters) and whether both dvc diffs succeeded."""
    metrics, params = collect(base, repo, run)
    return render(metrics, params, base, limit), metrics.error is None and params.error is None


def stale_stages(status: dict, outputs: set[str] = frozenset()) -> list[str]:
    """Stages of ``dvc status --json`` whose code, params or command changed since dvc.lock was
    written.

    Data does not count: a dependency that is, contains or lies inside a stage output
    (``outputs``: their paths) is absent or partly present in a clone without ``dvc pull``
    (a folder of git-tracked metrics beside cached plots reads as "modified"), and a real change
    to it shows up as its producing stage's change. Counted: a code dependency "modified" or
    "new", any change of a params file's values (dvc nests those as
    ``{"params.yaml": {"train.lr": "modified"}}``), a changed command."""

    def is_data(path: str) -> bool:
        path = path.rstrip("/")
        return any(path == o or path.startswith(o + "/") or o.startswith(path + "/") for o in outputs)

    stale = []
    for stage, changes in status.items():
        for change in changes if isinstance(changes, list) else []:
            if change == "changed command":
                stale.append(stage)
                break
            deps = change.get("changed deps", {}) if isinstance(change, dict) else {}
            if any((isinstance(state, dict) and state) or (state in ("modified", "new") and not is_data(path)) for path, state in deps.items()):
                stale.append(stage)
                break
    return sorted(stale)


def lock_outputs(repo: Path = Path(".")) -> set[str]:
    """Every stage output path recorded in dvc.lock."""
    lock = Path(repo) / "dvc.lock"
    if not lock.is_file():
        return set()
    try:
        import yaml

        data = yaml.safe_load(lock.read_text())
    except ImportError:  # the lock job installs only DVC, which brings ruamel.yaml
        from ruamel.yaml import YAML

        data = YAML(typ="safe").load(lock.read_text())
    return {o["path"].rstrip("/") for st in (data or {}).get("stages", {}).values() for o in st.get("outs", [])}


def check_lock(repo: Path = Path("."), run: Runner = subprocess.run) -> tuple[list[str], str | None]:
    """(stale stages, error) of this checkout's dvc.lock."""
    status = dvc_json(["status", "--json"], repo, run)
    return (stale_stages(status.data, lock_outputs(repo)), status.error)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trendfactory.report", description="Pull-request checks: a metrics report that fits in one comment, and the stale dvc.lock check.")
    parser.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--output", type=Path, help="write the comment-sized report here instead of printing it")
    parser.add_argument("--full", type=Path, help="also write the uncut report here (for the job summary)")
    parser.add_argument("--limit", type=int, default=COMMENT_LIMIT, help="characters at most in --output (default: %(default)s)")
    parser.add_argument("--check-lock", action="store_true", help="fail when dvc.lock is stale for this checkout's code or params")
    args = parser.parse_args(argv)
    if args.check_lock:
        stale, error = check_lock()
        if error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1)
        if stale:
            print(
                f"error: dvc.lock is stale for {len(stale)} stage(s) whose code or params changed: {', '.join(stale[:10])}"
                f"{' …' if len(stale) > 10 else ''}; run `dvc repro` and commit dvc.lock and the metrics",
                file=sys.stderr,
            )
            raise SystemExit(1)
        print("dvc.lock is up to date with the code and params")
        return
    metrics, params = collect(args.base, Path("."))  # once, for the comment and the uncut summary
    text, ok = render(metrics, params, args.base, args.limit), metrics.error is None and params.error is None
    if args.full:
        args.full.write_text(render(metrics, params, args.base, SUMMARY_LIMIT), encoding="utf-8")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    if not ok:
        print(f"error: a dvc diff against {args.base!r} failed (see the report)", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
