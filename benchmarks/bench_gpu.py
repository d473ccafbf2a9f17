"""GPU training benchmark of the default run's networks, without DVC.

Fits every network of params.yaml's ``run.neural_models`` and ``run.joint_models`` for each
walk-forward fold x seed the way ``python -m trendfactory.stages.train`` does (its ``run_job``:
threads pinned, everything seeded, ``create(...).fit(train, val)`` with the ``train`` section
and a checkpoint folder; horizon = the store's first, every horizon a head), on the default
data's window store, and prints per network:

* wall time of the fits (and of the stage's predictions with ``--predict``, on the device as
  the stage runs them);
* training throughput (samples/s of the trainer's training loop: forward + backward + step,
  validation excluded -- ``TrainResult.samples_per_second``);
* the trainer / bare-loop throughput ratio: the bare loop trains the same network (a copy of
  the fit's initial weights) on the fit's own first ``--bare-steps`` training batches,
  gathered onto the device beforehand, with the same loss (the fit's task), optimizer (fused
  AdamW, the same parameter groups and learning rates) and precision (autocast, grad scaler
  for fp16), and nothing else: no trainer, no schedule, no clipping, no validation;
* GPU utilisation (mean of ``torch.cuda.utilization()`` sampled every 0.2 s during the fits
  and during the bare loops; ``nvidia-smi`` where pynvml is missing; n/a without CUDA) and
  peak GPU memory.

The trainer gathers batches as the stage does: on a GPU the fold's features are device-resident
when they fit (``windows/torch_data.py``), so the ratio measures the trainer, not the gather.
``--fits-per-gpu K`` runs K fits at once in K processes sharing the device (what
``parallel.fits_per_gpu: K`` does with Ray tasks of 1/K GPU) and reports the wall time of them
all; the bare loop is skipped there (its throughput would measure the neighbours).

The window store is built the way the ingest, featurize and window stages build it (their own
functions, into ``--build-dir``), or read from ``--store DIR``. Building needs the embedded
data's packages (skfolio, arch) and an installed trendfactory; fitting needs only torch,
numpy, pandas, pyarrow, pyyaml, threadpoolctl and this repository's src/ (no DVC, Ray or
boosting library). So on a GPU machine without them, build the store here and carry it:

    nice -n 19 .venv/bin/python benchmarks/bench_gpu.py --build-only      # -> benchmarks/.scratch/gpu_store/windows (~40 MB)
    python3 benchmarks/bench_gpu.py --store benchmarks/.scratch/gpu_store/windows --device cuda

CPU dry run (one model, fold and seed, two epochs):

    nice -n 19 .venv/bin/python benchmarks/bench_gpu.py --device cpu --models mlp --folds 0 --seeds 1 --max-epochs 2 --bare-steps 20
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUILD_DIR = ROOT / "benchmarks" / ".scratch" / "gpu_store"  # git-ignored (benchmark scratch)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file (default: the repository's)")
    ap.add_argument("--store", default=None, help="an existing window store (the window stage's data/windows); default: build one")
    ap.add_argument("--build-dir", default=str(DEFAULT_BUILD_DIR), help="where to build raw/, features/ and windows/ (default: %(default)s)")
    ap.add_argument("--build-only", action="store_true", help="build the window store, print how to use it, and stop")
    ap.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda | cuda:N")
    ap.add_argument("--models", default=None, help="comma-separated networks (default: run.neural_models + run.joint_models)")
    ap.add_argument("--folds", default=None, help="fold numbers, comma-separated (default: every fold)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per fold (default: evaluate.seeds)")
    ap.add_argument("--max-epochs", type=int, default=None, help="override train.max_epochs (default: params)")
    ap.add_argument("--precision", default=None, help="override train.precision: auto | fp32 | tf32 | bf16 | fp16")
    ap.add_argument("--samples-per-epoch", type=int, default=None, help="override train.samples_per_epoch (a shorter epoch for a dry run)")
    ap.add_argument("--bare-steps", type=int, default=100, help="batches of the bare loop (timed after 5 warm-up steps)")
    ap.add_argument("--predict", action="store_true", help="also time the stage's predictions (val + test, every horizon; on the device, as the stage)")
    ap.add_argument("--fits-per-gpu", type=int, default=1, help="fits run at once, each in its own process sharing the device (parallel.fits_per_gpu; default 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of a fit (default: the model's, 1 for a network, as the train stage)")
    ap.add_argument("--numerics", choices=("portable", "native"), default=None, help="override params' numerics for this process")
    ap.add_argument("--budget", type=float, default=None, help="seconds: start no new fit after this much time (the output still comes back)")
    ap.add_argument("--json", default=None, help="also write every fit's numbers to this JSON file")
    ap.add_argument("--verbose", action="store_true", help="the trainer's per-epoch log lines")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.numerics:
    os.environ["TRENDFACTORY_NUMERICS"] = ARGS.numerics  # read when trendfactory is imported (next)
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))  # the repository's code, installed or not

import trendfactory  # noqa: E402,F401  (first: it fixes numpy's and torch's CPU paths before they load)

import copy  # noqa: E402
import dataclasses  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from trendfactory import numerics  # noqa: E402
from trendfactory.device import resolve_device  # noqa: E402
from trendfactory.errors import TrendfactoryError  # noqa: E402
from trendfactory.models import Samples, create, get_model_class, model_config  # noqa: E402
from trendfactory.models.base import FitContext  # noqa: E402
from trendfactory.models.common import trainer as trainer_mod  # noqa: E402
from trendfactory.params import Params, load_params  # noqa: E402
from trendfactory.windows.reader import WindowSplit  # noqa: E402

log = logging.getLogger("trendfactory")


# ---- the window store, as ingest -> featurize -> window build it -----------------------------
def build_store(params: Params, base: Path) -> Path:
    """The default data's window store under ``base`` (raw/, features/, windows/), made by the
    same calls as stages/ingest.py, stages/featurize.py and stages/window.py."""
    import pandas as pd

    from trendfactory.data.chunks import ParquetChunks, ParquetSink
    from trendfactory.data.ingest import ingest_chunks
    from trendfactory.data.universe import required_history
    from trendfactory.features.build import featurize
    from trendfactory.io import parquet_stream, read_json, write_json, write_parquet
    from trendfactory.windows.store import build_split

    raw, feats, windows = base / "raw", base / "features", base / "windows"
    for d in (raw, feats):
        d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with parquet_stream(raw / "bars.parquet") as stream:  # stage ingest
        result = ingest_chunks(params.data, params.seed, required_history(params.features, params.label), ParquetSink(stream, params.data.chunk_symbols))
    write_parquet(result.context, raw / "context.parquet")
    write_json(result.manifest, raw / "manifest.json")
    t1 = time.perf_counter()
    bars_path = raw / "bars.parquet"  # stage featurize
    context = pd.read_parquet(raw / "context.parquet")
    with parquet_stream(feats / "features.parquet") as stream:
        schema, folds = featurize(ParquetChunks(bars_path, params.data.chunk_symbols), context, params, stream, origin=str(bars_path))
    write_json(folds, feats / "folds.json")
    write_json(schema, feats / "schema.json")
    t2 = time.perf_counter()
    schema, folds = read_json(feats / "schema.json"), read_json(feats / "folds.json")  # stage window reads them back
    build_split(feats / "features.parquet", windows, feature_columns=schema["feature_columns"], horizons=schema["horizons"], seq_len=params.window.seq_len, folds=folds)
    print(
        f"built {windows} in {time.perf_counter() - t0:.1f}s (ingest {t1 - t0:.1f}s, featurize {t2 - t1:.1f}s, "
        f"window {time.perf_counter() - t2:.1f}s): {result.manifest['n_symbols']} symbols, {result.manifest['rows']:,} bars",
        flush=True,
    )
    return windows


# ---- GPU utilisation ------------------------------------------------------------------------
def _util_reader(device: torch.device):
    """A function returning the GPU's utilisation in % now, or None where it cannot be read."""
    if device.type != "cuda":
        return None
    try:
        torch.cuda.utilization(device)  # pynvml (nvidia-ml-py)
        return lambda: float(torch.cuda.utilization(device))
    except Exception:  # noqa: BLE001 -- no pynvml, no NVML: try nvidia-smi
        pass
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        index = visible.split(",")[index].strip()
    cmd = ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]

    def smi() -> float | None:
        try:
            return float(subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip().splitlines()[0])
        except Exception:  # noqa: BLE001
            return None

    return smi if smi() is not None else None


class UtilSampler:
    """Samples the GPU's utilisation every ``period`` seconds while in the ``with`` block."""

    def __init__(self, reader, period: float = 0.2) -> None:
        self.reader, self.period = reader, period
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> "UtilSampler":
        if self.reader is not None:
            self._thread = threading.Thread(target=self._run, name="gpu-util", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            v = self.reader()
            if v is not None:
                self.values.append(v)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None


# ---- capturing what the trainer was given, for the bare loop ---------------------------------
class TrainerSpy:
    """Wraps ``Trainer.fit`` (the one trainer every network goes through) to keep, per call, a
    copy of the network's initial weights, its parameter groups (by name), the training batches,
    the task and the result -- without changing what the fit does (a deepcopy draws no random
    numbers)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._orig = trainer_mod.Trainer.fit

    def __enter__(self) -> "TrainerSpy":
        spy, orig = self, self._orig

        def fit(trainer, net, train, val, param_groups=None, task=None):
            names = {id(p): n for n, p in net.named_parameters()}
            groups = None if not param_groups else [{"names": [names[id(p)] for p in g["params"]], "lr_mult": g.get("lr_mult", 1.0)} for g in param_groups]
            initial = copy.deepcopy(net)
            result = orig(trainer, net, train, val, param_groups, task)
            spy.calls.append(
                {"trainer": trainer, "initial": initial, "groups": groups, "train": train, "task": task or trainer_mod.Classification(aux_weight=trainer.cfg.aux_weight), "result": result}
            )
            return result

        trainer_mod.Trainer.fit = fit
        return self

    def __exit__(self, *exc) -> None:
        trainer_mod.Trainer.fit = self._orig


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(call: dict, steps: int, util_reader) -> tuple[float, float | None, int]:
    """samples/s of the plainest loop over the fit's first ``steps`` training batches, gathered
    onto the device first: the fit's loss, fused AdamW with its groups, its precision."""
    trainer = call["trainer"]
    device, cfg, precision = trainer.device, trainer.cfg, trainer.precision
    net = copy.deepcopy(call["initial"]).to(device).train()
    params = dict(net.named_parameters())
    groups = call["groups"] or [{"names": list(params), "lr_mult": 1.0}]
    opt = trainer_mod._adamw([{"params": [params[n] for n in g["names"]], "lr": cfg.lr * g["lr_mult"]} for g in groups], cfg.lr, cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scale)

    def forward(net_, x):  # what Trainer.forward does, without the trainer
        if precision.autocast is None:
            return net_(x)
        with torch.autocast(device.type, dtype=precision.autocast):
            return net_(x)

    shim = SimpleNamespace(forward=forward)
    gatherer = call["train"]
    gatherer.set_epoch(0)
    batches = [tuple(t.clone() for t in b) for b in itertools.islice(iter(gatherer), steps)]  # on the device
    sync(device)
    task = call["task"]

    def step(batch) -> None:
        loss = task.loss(shim, net, batch)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for batch in batches[:5]:  # warm-up: kernels chosen, allocator grown
        step(batch)
    sync(device)
    n = sum(task.size(b) for b in batches)
    with UtilSampler(util_reader) as util:
        t0 = time.perf_counter()
        for batch in batches:
            step(batch)
        sync(device)
        seconds = time.perf_counter() - t0
    return n / max(seconds, 1e-9), util.mean, len(batches)


# ---- one fit, as trendfactory.stages.train.run_job -------------------------------------------
def pin(threads: int) -> None:
    """The train stage's pin_threads; where this machine's libraries are not on the portable
    paths (numerics.ensure refuses), pin the threads alone and say so once."""
    from trendfactory.parallel import pin_threads

    try:
        pin_threads(threads, torch_too=True)
    except TrendfactoryError as exc:
        if not getattr(pin, "warned", False):
            print(f"note: {exc} -- continuing (timings only; pass --numerics native to silence this)", flush=True)
            pin.warned = True
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
        torch.set_num_threads(threads)


def run_fit(name: str, params: Params, train_cfg, store: Path, horizon: int, horizons: list[int], fold: int, seed_index: int, args: argparse.Namespace, device: torch.device, util_reader) -> dict:
    from trendfactory.runtime import seed_everything

    cls = get_model_class(name)
    config = model_config(params, cls.name)
    seed = params.seed + seed_index
    pin(args.threads or cls.threads(config))
    seed_everything(seed)
    train, val = Samples.open(store, horizon, fold, "train"), Samples.open(store, horizon, fold, "val")
    model = create(name, config, horizon=horizon, seed=seed, train=train_cfg)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_ckpt_") as ckpt, TrainerSpy() as spy, UtilSampler(util_reader) as util:
        sync(device)
        t0 = time.perf_counter()
        model.fit(train, val, FitContext(checkpoint_dir=Path(ckpt)))  # the stage's checkpoints, in a temp folder
        sync(device)
        fit_s = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    results = [c["result"] for c in spy.calls]  # one per network (the dual tower with joint: false trains one per horizon)
    epochs = sum(r.epochs for r in results)
    sps = [r.samples_per_second for r in results]
    bare_sps, bare_util, bare_n = bare_loop(spy.calls[0], args.bare_steps, util_reader) if spy.calls and args.bare_steps > 0 else (None, None, 0)
    predict_s = None
    if args.predict:
        t0 = time.perf_counter()
        for h in horizons:
            for role in ("val", "test"):
                model.predict(Samples.open(store, h, fold, role))
        predict_s = time.perf_counter() - t0
    trainer_sps = float(np.mean(sps)) if sps else None
    return {
        "model": name,
        "fold": fold,
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "epochs": epochs,
        "best_epoch": model.best_iteration_,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "trainer_sps": trainer_sps,
        "bare_sps": bare_sps,
        "bare_batches": bare_n,
        "ratio": trainer_sps / bare_sps if trainer_sps and bare_sps else None,
        "gpu_util_fit": util.mean,
        "gpu_util_bare": bare_util,
        "peak_mib": peak,
    }


def fit_in_worker(job: tuple) -> dict:
    """``run_fit`` in a worker process of ``--fits-per-gpu`` (no bare loop, no sampler: the
    parent samples the device for all of them)."""
    name, train_cfg, store, horizon, horizons, fold, s, args, device = job
    params = load_params(args.params)
    if device.type == "cuda":
        torch.cuda.init()
    return run_fit(name, params, train_cfg, store, horizon, horizons, fold, s, argparse.Namespace(**{**vars(args), "bare_steps": 0}), device, None)


def run_concurrent(jobs: list[tuple], k: int, args: argparse.Namespace, t_start: float, report) -> tuple[list[dict], int, float | None]:
    """Every job in ``k`` worker processes at once (spawned: CUDA does not survive a fork);
    jobs not started when ``--budget`` runs out are cancelled. Returns (rows, skipped, mean GPU
    utilisation over the whole run)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    rows, skipped = [], 0
    with cf.ProcessPoolExecutor(max_workers=k, mp_context=mp.get_context("spawn")) as pool, UtilSampler(_util_reader(jobs[0][-1])) as util:
        futures = [pool.submit(fit_in_worker, job) for job in jobs]
        for fut in cf.as_completed(futures):
            if fut.cancelled():
                skipped += 1
                continue
            rows.append(fut.result())
            report(rows[-1])
            if args.budget is not None and time.perf_counter() - t_start > args.budget:
                for f in futures:  # jobs not started yet: as_completed yields them cancelled (counted above)
                    f.cancel()
    return rows, skipped, util.mean


def _fmt(v, spec: str, na: str = "n/a") -> str:
    return na if v is None else format(v, spec)


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0f}%"


def command_line(store: str) -> str:
    """The one prepared command for a CUDA machine with the store built here: the stage's way
    (one fit after another, with the bare-loop ratio), then four fits sharing the GPU."""
    rel = os.path.relpath(store, ROOT) if Path(store).is_absolute() and str(store).startswith(str(ROOT)) else store
    base = f"PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py --store {shlex.quote(str(rel))} --device cuda --predict"
    return f"{base} --budget 240 --json $OUT/bench_gpu_1.json; {base} --fits-per-gpu 4 --bare-steps 0 --budget 200 --json $OUT/bench_gpu_4.json"


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="[bench_gpu] %(message)s", stream=sys.stderr)
    os.chdir(ROOT)  # relative paths in params (data.path) resolve as the stages resolve them
    params = load_params(args.params)
    t_start = time.perf_counter()
    if args.store:
        store = Path(args.store)
    else:
        store = build_store(params, Path(args.build_dir))
    if args.build_only:
        print("\nto benchmark on a CUDA machine (carry the store: it is git-ignored), run from the repository root:")
        print("  " + command_line(str(store)))
        return

    device = resolve_device(args.device, "--device")
    overrides = {"device": str(device)}
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    if args.precision is not None:
        overrides["precision"] = args.precision
    if args.samples_per_epoch is not None:
        overrides["samples_per_epoch"] = args.samples_per_epoch
    train_cfg = dataclasses.replace(params.train, **overrides)
    split = WindowSplit.open(store)
    horizons = list(split.horizons)
    horizon = horizons[0]  # the train stage's horizon for a network (no --horizon: the store's first)
    folds = [int(f) for f in args.folds.split(",")] if args.folds else list(range(split.n_folds))
    n_seeds = args.seeds if args.seeds is not None else params.evaluate.seeds
    names = args.models.split(",") if args.models else [*params.run.neural_models, *params.run.joint_models]
    for name in names:
        if not get_model_class(name).uses_trainer:
            raise SystemExit(f"--models: {name} is not a network (no torch trainer)")
    util_reader = _util_reader(device)
    precision = {n: trainer_mod.Precision.resolve(train_cfg.precision, device, get_model_class(n).gpu_precision) for n in names}
    shown = sorted({f"{p.autocast or ('tf32' if p.tf32 else 'fp32')}{' + grad scaler' if p.scale else ''}" for p in precision.values()})
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, python {platform.python_version()}, device {device} ({dev_name}); precision {train_cfg.precision} -> {', '.join(shown)}; numerics {numerics.state().mode}")
    print(
        f"store {store}: {split.n_rows:,} rows x {split.n_features} features, seq_len {split.seq_len}, horizons {horizons}, "
        f"{split.n_folds} folds; fits: {len(names)} networks x folds {folds} x {n_seeds} seeds; batch {train_cfg.batch_size}, "
        f"max_epochs {train_cfg.max_epochs}, patience {train_cfg.patience}; GPU utilisation: {'sampled' if util_reader else 'n/a'}",
        flush=True,
    )
    if device.type == "cuda":  # the context and cuBLAS handle, so the first fit does not pay for them
        a = torch.randn(256, 256, device=device)
        (a @ a).sum().item()

    def report(r: dict) -> None:
        print(
            f"  {r['model']:12s} fold {r['fold']} seed {r['seed']}: fit {r['fit_s']:7.1f}s, {r['epochs']:2d} epochs "
            f"(best {r['best_epoch'] + 1}), {r['n_train']:,} train; trainer {_fmt(r['trainer_sps'], ',.0f')}/s, "
            f"bare {_fmt(r['bare_sps'], ',.0f')}/s ({r['bare_batches']} batches), ratio {_fmt(r['ratio'], '.2f')}; "
            f"GPU util fit {_pct(r['gpu_util_fit'])} bare {_pct(r['gpu_util_bare'])}; "
            f"peak {_fmt(r['peak_mib'], ',.0f')} MiB" + (f"; predict {r['predict_s']:.1f}s" if r["predict_s"] is not None else ""),
            flush=True,
        )

    # fold and seed outside, networks inside: a --budget cut still leaves every network measured
    order = [(f, s, n) for f in folds for s in range(n_seeds) for n in names]
    t_fits = time.perf_counter()
    util_all = None
    if args.fits_per_gpu > 1:
        jobs = [(name, train_cfg, store, horizon, horizons, fold, s, args, device) for fold, s, name in order]  # params: read again there
        rows, skipped, util_all = run_concurrent(jobs, args.fits_per_gpu, args, t_start, report)
    else:
        rows, skipped = [], 0
        for fold, s, name in order:
            if args.budget is not None and time.perf_counter() - t_start > args.budget:
                skipped += 1
                continue
            rows.append(run_fit(name, params, train_cfg, store, horizon, horizons, fold, s, args, device, util_reader))
            report(rows[-1])
    fits_wall = time.perf_counter() - t_fits

    print(
        f"\n{'network':12s} {'fits':>4s} {'wall s':>8s} {'s/fit':>7s} {'epochs':>6s} {'trainer/s':>10s} {'bare/s':>10s} "
        f"{'ratio':>6s} {'GPU% fit':>8s} {'GPU% bare':>9s} {'peak MiB':>8s}" + (f" {'predict s':>9s}" if args.predict else "")
    )
    for name in names:
        rs = [r for r in rows if r["model"] == name]
        if not rs:
            continue

        def med(key):
            vals = [r[key] for r in rs if r[key] is not None]
            return statistics.median(vals) if vals else None

        wall = sum(r["fit_s"] for r in rs)
        peak = max((r["peak_mib"] for r in rs if r["peak_mib"] is not None), default=None)
        print(
            f"{name:12s} {len(rs):4d} {wall:8.1f} {wall / len(rs):7.1f} {sum(r['epochs'] for r in rs) / len(rs):6.1f} "
            f"{_fmt(med('trainer_sps'), ',.0f'):>10s} {_fmt(med('bare_sps'), ',.0f'):>10s} {_fmt(med('ratio'), '.2f'):>6s} "
            f"{_fmt(med('gpu_util_fit'), '.0f'):>8s} {_fmt(med('gpu_util_bare'), '.0f'):>9s} {_fmt(peak, ',.0f'):>8s}" + (f" {sum(r['predict_s'] for r in rs):9.1f}" if args.predict else "")
        )
    total = time.perf_counter() - t_start
    print(
        f"(medians over fits; wall s = the fits' total; ratio = trainer / bare samples/s)\n"
        f"all {len(rows)} fits{' and their predictions' if args.predict else ''} in {fits_wall:.1f}s wall, {args.fits_per_gpu} at a time"
        + (f" (GPU utilisation {util_all:.0f}% over them)" if util_all is not None else "")
        + f"; total {total:.1f}s"
        + (f"; {skipped} fits skipped: --budget {args.budget:g}s reached" if skipped else "")
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "device": str(device),
                    "device_name": dev_name,
                    "torch": torch.__version__,
                    "precision": train_cfg.precision,
                    "fits_per_gpu": args.fits_per_gpu,
                    "fits_wall_s": fits_wall,
                    "total_s": total,
                    "fits": rows,
                },
                indent=1,
            )
            + "\n"
        )
    print("\non a CUDA machine, with the store built here and carried (`--build-only` builds it), run from the repository root:\n  " + command_line(str(store)))


if __name__ == "__main__":
    try:
        main(ARGS)
    except TrendfactoryError as exc:
        raise SystemExit(f"error: {exc}") from None
