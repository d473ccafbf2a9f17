"""A universe that does not fit in memory: ingest -> featurize -> window on synthetic universes of
growing size, each stage run the way `dvc repro` runs it, with its wall time and peak RSS.

Targets: 1,000 symbols x 6,300 bars (25 years of business days) through the three
stages in <= 10 minutes with every stage's peak RSS <= 6 GB on the 2-core machine, and peak
memory flat as the universe doubles (it follows data.chunk_symbols, not the universe).

    .venv/bin/python benchmarks/bench_scale.py                          # 500 and 1,000 symbols
    .venv/bin/python benchmarks/bench_scale.py --symbols 250 500 1000   # and 250
    .venv/bin/python benchmarks/bench_scale.py --symbols 100 200 --bars 2000   # a quick look

For each size a temp directory gets this checkout's params.yaml with data.source synthetic,
n_symbols, n_bars and no date range (everything else as committed: walk-forward folds, the
features, data.chunk_symbols), and each stage runs as `python -m trendfactory.stages.<stage>`
in it (this checkout's src/ first on PYTHONPATH), one after the other. Peak RSS is the
stage process' own high-water mark (``ru_maxrss`` from ``wait4``), which counts file pages it
has mapped as well as its heap. The last lines project the figures to 3,000 symbols: time
linear in the rows (from the two largest sizes), memory the largest size's peak plus the
measured growth per symbol.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "featurize", "window")
MB = 1 << 20


def run_stage(stage: str, work: Path) -> dict:
    """Run one stage in ``work``; wall seconds, peak RSS (bytes), and its log's last line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"trendfactory.stages.{stage}"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed in {work}:\n{out}")
    return {"wall_s": wall, "peak_rss_b": usage.ru_maxrss * 1024, "log": out.strip().splitlines()[-1] if out.strip() else ""}


def params_for(symbols: int, bars: int, chunk_symbols: int | None) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update({"source": "synthetic", "start": None, "end": None})
    if chunk_symbols:
        params["data"]["chunk_symbols"] = chunk_symbols
    params["data"]["synthetic"].update({"n_symbols": symbols, "n_bars": bars})
    return params


def measure(symbols: int, bars: int, chunk_symbols: int | None, workdir: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"tf-scale-{symbols}-", dir=workdir) as tmp:
        work = Path(tmp)
        params = params_for(symbols, bars, chunk_symbols)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"{symbols:,} symbols x {bars:,} bars = {symbols * bars:,} rows (chunk_symbols {params['data']['chunk_symbols']}):", flush=True)
        stages = {}
        for stage in STAGES:
            stages[stage] = run_stage(stage, work)
            print(f"  {stage:10s} {stages[stage]['wall_s']:7.1f} s  peak RSS {stages[stage]['peak_rss_b'] / MB:7.0f} MB   {stages[stage]['log'][:90]}", flush=True)
        sizes = {
            "bars.parquet": (work / "data/raw/bars.parquet").stat().st_size,
            "features.parquet": (work / "data/features/features.parquet").stat().st_size,
            "windows/": sum(p.stat().st_size for p in (work / "data/windows").iterdir()),
            "windows/features.npy": (work / "data/windows/features.npy").stat().st_size,
        }
        meta = json.loads((work / "data/windows/meta.json").read_text())
        shutil.rmtree(work / "data")
    return {
        "symbols": symbols,
        "bars": bars,
        "rows": symbols * bars,
        "chunk_symbols": params["data"]["chunk_symbols"],
        "features": meta["n_features"],
        "folds": len(meta.get("folds", [])),
        "stages": stages,
        "sizes": sizes,
        "total_s": sum(s["wall_s"] for s in stages.values()),
        "peak_rss_b": max(s["peak_rss_b"] for s in stages.values()),
    }


def report(results: list[dict], project_to: int) -> None:
    print()
    head = f"{'symbols':>8} {'rows':>12} | " + " | ".join(f"{s:>20}" for s in STAGES) + f" | {'total':>8} | {'peak':>8}"
    print(head)
    print(f"{'':>8} {'':>12} | " + " | ".join(f"{'time s / peak MB':>20}" for _ in STAGES) + f" | {'s':>8} | {'MB':>8}")
    print("-" * len(head))
    for r in results:
        cells = " | ".join(f"{r['stages'][s]['wall_s']:8.1f} / {r['stages'][s]['peak_rss_b'] / MB:9.0f}" for s in STAGES)
        print(f"{r['symbols']:>8,} {r['rows']:>12,} | {cells} | {r['total_s']:8.1f} | {r['peak_rss_b'] / MB:8.0f}")
    big = results[-1]
    gb = big["sizes"]
    print(
        f"\noutputs at {big['symbols']:,} symbols: bars.parquet {gb['bars.parquet'] / MB:,.0f} MB, features.parquet "
        f"{gb['features.parquet'] / MB:,.0f} MB ({big['features']} features, {big['folds']} folds), window store "
        f"{gb['windows/'] / MB:,.0f} MB (features.npy {gb['windows/features.npy'] / MB:,.0f} MB)"
    )
    ok_mem, ok_time = big["peak_rss_b"] <= 6 * 1024 * MB, big["total_s"] <= 600
    print(
        f"targets at {big['symbols']:,} symbols: peak RSS {big['peak_rss_b'] / MB:,.0f} MB <= 6,144 MB: {'PASS' if ok_mem else 'FAIL'}; "
        f"total {big['total_s']:.0f} s <= 600 s: {'PASS' if ok_time else 'FAIL'}"
    )
    if len(results) < 2:
        return
    small = results[-2]
    if small["symbols"] <= small["chunk_symbols"]:
        print(f"(note: {small['symbols']:,} symbols is one chunk of {small['chunk_symbols']:,}: memory still grows up to the chunk size, so the memory projection below overstates a larger universe)")
    ratio = big["symbols"] / small["symbols"]
    print(f"\n{small['symbols']:,} -> {big['symbols']:,} symbols (x{ratio:g}):")
    for s in STAGES:
        a, b = small["stages"][s], big["stages"][s]
        print(f"  {s:10s} time x{b['wall_s'] / a['wall_s']:.2f}, peak RSS x{b['peak_rss_b'] / a['peak_rss_b']:.2f} ({(b['peak_rss_b'] - a['peak_rss_b']) / MB:+,.0f} MB)")
    print(f"\nprojection to {project_to:,} symbols x {big['bars']:,} bars ({project_to * big['bars']:,} rows):")
    total = 0.0
    for s in STAGES:
        a, b = small["stages"][s], big["stages"][s]
        per_symbol_s = (b["wall_s"] - a["wall_s"]) / (big["symbols"] - small["symbols"])
        t = b["wall_s"] + per_symbol_s * (project_to - big["symbols"])
        per_symbol_b = max(0.0, (b["peak_rss_b"] - a["peak_rss_b"]) / (big["symbols"] - small["symbols"]))
        m = b["peak_rss_b"] + per_symbol_b * (project_to - big["symbols"])
        total += t
        print(f"  {s:10s} ~{t:6.0f} s, peak RSS ~{m / MB:6,.0f} MB")
    print(f"  {'total':10s} ~{total:6.0f} s = {total / 60:.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, nargs="+", default=[500, 1000], help="universe sizes, ascending")
    ap.add_argument("--bars", type=int, default=6300, help="bars per symbol (6,300 business days = 25 years)")
    ap.add_argument("--chunk-symbols", type=int, default=None, help="data.chunk_symbols (default: params.yaml's)")
    ap.add_argument("--project", type=int, default=3000, help="universe size to project the figures to")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temp directories go (default: the system's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    results = [measure(s, args.bars, args.chunk_symbols, args.workdir) for s in sorted(args.symbols)]
    report(results, args.project)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
