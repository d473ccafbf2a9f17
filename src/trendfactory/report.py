"""Pull-request report: `dvc metrics diff` and `dvc params diff` against a base revision as one
Markdown comment body (the `pr-metrics` GitHub workflow posts it).

    python -m trendfactory.report [--base main] [--all] [--output FILE]

Exits 1 when a dvc command failed; the report (still written) says which one and why.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

MARKER = "<!-- trendfactory-pr-report -->"  # lets the workflow find and update its own comment


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _section(
    title: str, args: list[str], repo: Path, run: Callable[..., subprocess.CompletedProcess]
) -> tuple[str, bool]:
    """Run one `dvc ... diff --md`; return its Markdown section and whether the command succeeded."""
    cmd = [sys.executable, "-m", "dvc", *args]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        proc = run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        return f"### {title}\n\n**`dvc {' '.join(args)}` failed:** {exc}\n", False
    if proc.returncode != 0:
        why = _last_line(proc.stderr or "") or f"exit code {proc.returncode}"
        return f"### {title}\n\n**`dvc {' '.join(args)}` failed:** {why}\n", False
    # dvc prints a header-only table (not nothing) when no row differs.
    rows = [line for line in (proc.stdout or "").splitlines() if line.startswith("|")]
    # Its row order varies from run to run; sort so an updated comment only changes with the data.
    body = "\n".join(rows[:2] + sorted(rows[2:])) if len(rows) > 2 else f"No {title.lower()} changes."
    # Exit 0 can still carry a warning, e.g. "DVC failed to load some metrics ..." (bad JSON).
    warning = _last_line(proc.stderr or "")
    if warning:
        body += f"\n\n> dvc: {warning}"
    return f"### {title}\n\n{body}\n", True


def build_report(
    base: str = "main",
    repo: Path = Path("."),
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    show_all: bool = False,
) -> tuple[str, bool]:
    """The Markdown report and whether both dvc commands succeeded."""
    metrics_args = ["metrics", "diff", base, "--md"] + (["--all"] if show_all else [])
    metrics, ok_m = _section("Metrics", metrics_args, repo, run)
    params, ok_p = _section("Params", ["params", "diff", base, "--md"], repo, run)
    head = (
        f"{MARKER}\n## trendfactory: metrics and params vs {base}\n\n"
        f"Old values are from `{base}`, new ones from this checkout (dvc's `workspace` column).\n"
    )
    return "\n".join([head, metrics, params]), ok_m and ok_p


def pr_report(
    base: str = "main",
    repo: Path = Path("."),
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    *,
    show_all: bool = False,
) -> str:
    """Markdown comment body comparing `repo`'s metrics and params with git revision `base`.

    Only changed metrics are listed unless `show_all`; params always show only changes.
    """
    return build_report(base, repo, run, show_all)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m trendfactory.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--all", action="store_true", help="list unchanged metrics too")
    parser.add_argument("--output", type=Path, help="write the Markdown here instead of printing it")
    args = parser.parse_args(argv)
    text, ok = build_report(args.base, Path("."), show_all=args.all)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    if not ok:
        print(f"error: a dvc diff against {args.base!r} failed (see the report)", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
