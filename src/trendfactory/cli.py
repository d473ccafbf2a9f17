"""`trendfactory` console command."""

from __future__ import annotations

import argparse
import sys

from trendfactory.errors import TrendfactoryError


def _validate(args: argparse.Namespace) -> None:
    """Check a user's bars with the same rules ingest applies, without running the pipeline."""
    from trendfactory.data.csv_source import load_csv_bars
    from trendfactory.data.validation import combine

    frames, _ = load_csv_bars(args.input)
    bars = combine(frames)
    cols = ", ".join(c for c in bars.columns if c not in ("symbol", "datetime"))
    print(
        f"ok: {args.input}: {len(bars):,} bars, {bars['symbol'].nunique()} symbols, "
        f"{bars['datetime'].min()} .. {bars['datetime'].max()}; columns: {cols}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trendfactory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="validate a CSV/Parquet file or a directory of per-symbol files")
    p.add_argument("--input", required=True, help="file or directory of bars")
    p.set_defaults(func=_validate)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except TrendfactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
