"""What every stage entry point shares: argument parsing, logging, one-line errors
(``configure_logging`` and ``seed_everything`` live in trendfactory.runtime: library code uses them too)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Callable


from trendfactory import numerics
from trendfactory.errors import TrendfactoryError
from trendfactory.params import Params, load_params
from trendfactory.runtime import configure_logging, seed_everything

log = logging.getLogger("trendfactory")


def _is_dvc(proc) -> bool:
    """A `dvc` command (``dvc repro``, ``python -m dvc exp run``, a queued experiment's worker)."""
    try:
        cmd = proc.cmdline()
    except Exception:  # psutil.NoSuchProcess / AccessDenied: not one we can watch
        return False
    return any(os.path.basename(a) == "dvc" for a in cmd[:2]) or cmd[1:3] == ["-m", "dvc"]


def stop_with_dvc(poll_seconds: float = 1.0) -> threading.Thread | None:
    """When this stage runs under ``dvc repro``/``dvc exp run``, stop it (and its worker
    processes) once that dvc process is gone.

    Killing ``dvc repro`` kills neither the shell it started the stage in nor the stage, and a
    stage that runs on would later rename its outputs over the ones DVC restores (or a rerun is
    writing). A daemon thread polls the dvc ancestor; ``is_running`` compares the process'
    start time too, so a recycled pid does not count as alive."""
    import psutil  # DVC's own dependency

    me = psutil.Process()
    try:
        dvc = next((p for p in me.parents() if _is_dvc(p)), None)
    except psutil.Error:
        return None
    if dvc is None:  # run by hand: the terminal's hang-up signal covers it
        return None

    def watch() -> None:
        while dvc.is_running():
            time.sleep(poll_seconds)
        log.error("dvc (pid %d) is gone; stopping this stage and its workers", dvc.pid)
        for child in me.children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass  # already gone
        os._exit(1)  # no cleanup handlers: the next run removes this run's temp outputs

    thread = threading.Thread(target=watch, name="stop-with-dvc", daemon=True)
    thread.start()
    return thread


def stage_main(name: str, body: Callable[[Params, argparse.Namespace], None], add_args=None) -> None:
    """Parse --params, load and validate them, run `body`; a TrendfactoryError exits 1 with one line."""
    parser = argparse.ArgumentParser(prog=f"python -m trendfactory.stages.{name}")
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
    if add_args:
        add_args(parser)
    args = parser.parse_args()
    configure_logging(name)
    stop_with_dvc()
    try:
        params = load_params(args.params)
        numerics.ensure(params.numerics)  # the CPU paths trendfactory's import set are the params'
        log.info(numerics.describe(params.numerics))
        seed_everything(params.seed)
        body(params, args)
    except TrendfactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
