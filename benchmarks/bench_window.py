"""Benchmark the window stage core: build_split + batch gathering vs per-window pandas loops.

    .venv/bin/python benchmarks/bench_window.py          # 500 symbols x 2,000 rows x 64 features

1. (untimed, in a subprocess) write a seeded featurized parquet: N = 1,000,000 rows, F = 64
   float32 features with NaN warm-up rows per symbol, label/ret/score for horizons 1, 5, 20
   (nulls at the end of each symbol); pandas' default row groups (one 1M-row group), as the
   featurize stage writes it.
2. build_split in a FRESH subprocess, timed end to end (3 runs, median; the worst peak).
   Peak memory = peak RSS of that process minus its RSS right after the imports. Peak RSS is
   read two ways: `resource.getrusage(RUSAGE_SELF).ru_maxrss` and /proc/self/status VmHWM
   (the same high-water mark, per address space; after the imports it is reset by writing 5
   to /proc/self/clear_refs, where allowed). ru_maxrss alone can be polluted: Linux carries
   the parent's peak RSS into a child at exec, which is why the parquet is generated in a
   separate process and the parent stays small until the build has run. RSS counts the
   file-backed pages of the memmaps being written (features.npy ...), so this is the
   conservative figure; a sampling thread splits the peak into anonymous (heap) and
   file-backed parts. Requirement: peak <= 2 x the float32 matrix (N*F*4 bytes).
3. gather every window of index(h) in shuffled batches with BatchGatherer (one index_select
   per batch), timed (best of 3), and the same with split.windows(ends) (numpy).
4. reference: per-window pandas loops over the same valid ends (handed over for free), timed
   on an evenly spread sample of windows and scaled linearly to all windows:
     R1  fdf.iloc[e-L+1:e+1].to_numpy(), fdf = the feature columns only (one float32 block):
         the fastest pandas form; note that it returns VIEWS (no copy) of the frame.
     R1s R1 plus np.stack per batch: the same [B, L, F] batches BatchGatherer yields.
     R2  df.iloc[e-L+1:e+1][features].to_numpy(), df = the featurized frame as read.
     R3  df.iloc[e-L+1:e+1].to_numpy() on the featurized frame as read (the literal
         expression; yields object arrays, so not usable windows).
   Requirement: ours (build + gather) >= 100x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------------


def child_make(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(args.seed)
    n_sym, n_rows, n_feat = args.symbols, args.rows, args.features
    n = n_sym * n_rows
    names = [f"stk_f{j:02d}" for j in range(n_feat // 2)] + [f"ctx_f{j:02d}" for j in range(n_feat - n_feat // 2)]
    X = rng.standard_normal((n, n_feat), dtype=np.float32)
    pos = np.tile(np.arange(n_rows), n_sym)
    warm = rng.integers(0, 30, size=n_feat)  # per-feature indicator warm-up
    X[pos[:, None] < warm[None, :]] = np.nan
    cols: dict = {
        "symbol": np.repeat([f"S{i:04d}" for i in range(n_sym)], n_rows),
        "datetime": np.tile(pd.date_range("2010-01-01", periods=n_rows, freq="B").to_numpy(), n_sym),
    }
    for j, c in enumerate(names):
        cols[c] = X[:, j]
    for h in args.horizons:
        lab = pd.array(rng.integers(-1, 2, size=n), dtype="Int8")
        lab[pos >= n_rows - h - 1] = pd.NA
        ret = rng.normal(scale=0.01, size=n)
        ret[pos >= n_rows - h - 1] = np.nan
        cols[f"label_h{h}"] = lab
        cols[f"ret_h{h}"] = ret
        cols[f"score_h{h}"] = np.tanh(ret * 50)
    pd.DataFrame(cols).to_parquet(args.parquet, index=False)
    print(json.dumps(names))


def child_build(args: argparse.Namespace) -> None:
    import numpy as np  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from trendfactory.windows.store import build_split

    try:  # reset the peak-RSS high-water mark to "now" (after the imports)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    rss0_kb = _status_kb("VmRSS")
    peaks = {"RssAnon": 0, "RssFile": 0}
    stop = threading.Event()

    def sample() -> None:
        base = {k: _status_kb(k) for k in peaks}
        while not stop.is_set():
            for k in peaks:
                peaks[k] = max(peaks[k], _status_kb(k) - base[k])
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    meta = build_split(Path(args.parquet), Path(args.out), args.feature_names, args.horizons, args.seq_len)
    dt = time.perf_counter() - t0
    stop.set()
    t.join()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm_kb = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "build_s": dt,
                "rss_after_imports_b": rss0_kb * 1024,
                "peak_maxrss_b": (maxrss_kb - rss0_kb) * 1024,
                "peak_hwm_b": (hwm_kb - rss0_kb) * 1024,
                "hwm_reset": hwm_reset,
                "peak_anon_b": peaks["RssAnon"] * 1024,
                "peak_file_b": peaks["RssFile"] * 1024,
                "windows": meta["counts"]["windows"],
            }
        )
    )


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--rows", type=int, default=2000, help="rows per symbol")
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--horizons", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--horizon", type=int, default=5, help="horizon whose windows are gathered")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--ref-windows", type=int, default=20_000, help="sample for R1/R1s")
    ap.add_argument("--ref-windows-slow", type=int, default=3_000, help="sample for R2/R3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="build_split runs (median reported)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--child", choices=["make", "build"], help=argparse.SUPPRESS)
    ap.add_argument("--parquet", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--feature-names", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "make":
        child_make(args)
        return
    if args.child == "build":
        child_build(args)
        return

    tmp = tempfile.TemporaryDirectory(dir=args.workdir)
    work = Path(tmp.name)
    pq_path = work / "train.parquet"
    out = work / "windows" / "train"
    n = args.symbols * args.rows
    F, L = args.features, args.seq_len
    common = ["--seq-len", str(L), "--horizons", *map(str, args.horizons)]

    def child(*extra: str) -> str:
        res = subprocess.run([sys.executable, __file__, *extra, *common], capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"child {extra[:2]} failed:\n{res.stderr}")
        return res.stdout.strip().splitlines()[-1]

    print(f"writing {n:,} rows x {F} features ({args.symbols} symbols) ... ", end="", flush=True)
    t0 = time.perf_counter()
    names = json.loads(child("--child", "make", "--parquet", str(pq_path), "--symbols", str(args.symbols), "--rows", str(args.rows), "--features", str(F), "--seed", str(args.seed)))
    print(f"{time.perf_counter() - t0:.1f}s, {pq_path.stat().st_size / 1e6:.0f} MB parquet (untimed)")

    # --- build_split in fresh processes (parent still small: only the stdlib imported) -----
    runs = []
    for k in range(args.repeat):
        if out.exists():
            shutil.rmtree(out)  # each run builds from scratch (untimed clean-up)
        runs.append(json.loads(child("--child", "build", "--parquet", str(pq_path), "--out", str(out), "--feature-names", *names)))
    runs.sort(key=lambda r: r["build_s"])
    res = runs[len(runs) // 2]  # the median run
    build_s = res["build_s"]
    build_all = [r["build_s"] for r in runs]

    import numpy as np
    import pandas as pd
    import torch

    from trendfactory.windows.reader import WindowSplit
    from trendfactory.windows.torch_data import BatchGatherer

    # --- gather all windows of one horizon ---------------------------------------------------
    split = WindowSplit.open(out)
    ends = np.asarray(split.index(args.horizon))
    n_win = len(ends)
    torch.set_num_threads(os.cpu_count() or 1)

    def run_gatherer() -> float:
        t = time.perf_counter()
        for x, _y in BatchGatherer(split, args.horizon, args.batch_size, shuffle=True, seed=0):
            pass
        return time.perf_counter() - t

    def run_numpy() -> float:
        t = time.perf_counter()
        perm = np.random.default_rng(0).permutation(n_win)
        for k in range(0, n_win, args.batch_size):
            split.windows(ends[perm[k : k + args.batch_size]])
        return time.perf_counter() - t

    run_gatherer()  # warm-up
    gather_s = min(run_gatherer() for _ in range(3))
    numpy_s = min(run_numpy() for _ in range(3))

    # --- references: per-window pandas .iloc ---------------------------------------------------
    df = pd.read_parquet(pq_path)
    fdf = df[names].copy()  # one consolidated float32 block
    feat_pos = [df.columns.get_loc(c) for c in names]

    def sample(k: int) -> np.ndarray:
        return ends[np.linspace(0, n_win - 1, min(k, n_win)).astype(np.int64)]

    refs: dict[str, tuple[str, float, int]] = {}

    def time_ref(key: str, label: str, fn, s: np.ndarray) -> list:
        t = time.perf_counter()
        got = fn(s)
        dt = time.perf_counter() - t
        refs[key] = (label, dt * n_win / len(s), len(s))
        return got

    s1 = sample(args.ref_windows)
    r1 = time_ref("R1", "fdf.iloc[e-L+1:e+1].to_numpy() (views)", lambda s: [fdf.iloc[e - L + 1 : e + 1].to_numpy() for e in s], s1)
    B = args.batch_size
    time_ref("R1s", "R1 + np.stack into [B, L, F] batches", lambda s: [np.stack([fdf.iloc[e - L + 1 : e + 1].to_numpy() for e in s[k : k + B]]) for k in range(0, len(s), B)], s1)
    s2 = sample(args.ref_windows_slow)
    r2 = time_ref("R2", "df.iloc[e-L+1:e+1][features].to_numpy()", lambda s: [df.iloc[e - L + 1 : e + 1][names].to_numpy() for e in s], s2)
    time_ref("R3", "df.iloc[e-L+1:e+1].to_numpy() (object dtype)", lambda s: [df.iloc[e - L + 1 : e + 1].to_numpy() for e in s], s2)
    ours1, ours2 = split.windows(s1), split.windows(s2)
    assert all(np.array_equal(ours1[i], r1[i]) for i in range(len(s1))), "mismatch vs R1"
    assert all(np.array_equal(ours2[i], r2[i]) for i in range(len(s2))), "mismatch vs R2"
    assert feat_pos == list(range(2, 2 + F))
    del df, fdf, r1, r2

    mat_b = n * F * 4
    total_s = build_s + gather_s
    peak_b = max(max(r["peak_maxrss_b"], r["peak_hwm_b"]) for r in runs)  # worst run
    mem_ratio = peak_b / mat_b
    speedups = {k: v[1] / total_s for k, v in refs.items()}
    mib = 1 / 2**20
    print()
    W = 58
    print(f"{'measure':<{W}}{'value':>16}")
    print("-" * (W + 16))
    table = [
        ("rows x features / seq_len", f"{n:,} x {F} / {L}"),
        (f"windows gathered (index_h{args.horizon})", f"{n_win:,}"),
        (f"build_split (fresh process, end to end; median of {len(build_all)})", f"{build_s:.2f} s"),
        ("  all runs", " / ".join(f"{b:.2f}" for b in build_all) + " s"),
        (f"gather all, BatchGatherer (B={B}, shuffled, best of 3)", f"{gather_s:.2f} s"),
        ("  same with split.windows(ends) (numpy, fresh arrays)", f"{numpy_s:.2f} s"),
        ("ours: build + gather", f"{total_s:.2f} s"),
    ]
    for k, (label, scaled, m) in refs.items():
        table.append((f"{k} {label}", f"{scaled:.0f} s"))
        table.append((f"     timed on {m:,} windows, scaled; speedup", f"{speedups[k]:.0f}x"))
    table += [
        ("float32 matrix N*F*4", f"{mat_b * mib:.0f} MiB"),
        ("build peak (median run): ru_maxrss - RSS after imports", f"{res['peak_maxrss_b'] * mib:.0f} MiB"),
        ("build peak: VmHWM - RSS after imports" + ("" if res["hwm_reset"] else " (no reset)"), f"{res['peak_hwm_b'] * mib:.0f} MiB"),
        ("  peak anonymous (heap) part, sampled", f"{res['peak_anon_b'] * mib:.0f} MiB"),
        ("  peak file-backed (memmap pages) part, sampled", f"{res['peak_file_b'] * mib:.0f} MiB"),
        ("worst peak over runs / matrix (requirement <= 2x)", f"{mem_ratio:.2f}x"),
    ]
    for k, v in table:
        print(f"{k:<{W}}{v:>16}")
    print("-" * (W + 16))
    print(f"memory <= 2x matrix: {'PASS' if mem_ratio <= 2 else 'FAIL'} ({mem_ratio:.2f}x)")
    for k in refs:
        print(f"speed >= 100x vs {k}: {'PASS' if speedups[k] >= 100 else 'FAIL'} ({speedups[k]:.0f}x)")
    if args.json:
        figures = {
            "rows": n,
            "features": F,
            "seq_len": L,
            "horizon": args.horizon,
            "windows": n_win,
            "batch_size": B,
            "build_s": build_s,
            "build_runs_s": build_all,
            "gather_s": gather_s,
            "gather_numpy_s": numpy_s,
            "total_s": total_s,
            "matrix_b": mat_b,
            "peak_over_matrix": mem_ratio,
            "references": {k: {"what": v[0], "scaled_s": v[1], "sample": v[2], "speedup": speedups[k]} for k, v in refs.items()},
            **{k: v for k, v in res.items() if k.endswith("_b")},
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    tmp.cleanup()


if __name__ == "__main__":
    main()
