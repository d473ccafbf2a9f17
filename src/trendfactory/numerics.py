"""Which numerical code paths a process computes with: ``portable`` (the same bytes on x86-64
CPUs with AVX2 and FMA, Intel or AMD, whoever runs it) or ``native`` (each library's fastest path
for this CPU and core count).

Why: numpy, OpenBLAS, MKL, oneDNN and PyTorch pick their kernels at run time from the CPU's
vector instructions, and a BLAS splits its sums by the number of threads. The same code, data
and params then give other last bits on an AVX-512 machine than on an AVX2 one (numpy's ``log``
and ``pow`` differ from ingest on), and a network's training amplifies a last-bit difference like
a change of seed: the verdict would depend on whose CPU computed it. ``portable`` pins every one
of those choices to a level every x86-64-v3 CPU (Intel Haswell / AMD Zen and later) has:

- numpy: no dispatch above x86-64-v3 (``NPY_DISABLE_CPU_FEATURES``: its AVX-512 loops, SVML's
  transcendental functions and AVX-512 sorts are off);
- OpenBLAS (numpy's and SciPy's copies): the Haswell kernels (``OPENBLAS_CORETYPE``), also on
  AMD Zen, whose own kernel choice differs;
- MKL (PyTorch's BLAS, FFT and LAPACK): its vendor-neutral reproducible branch, strict
  (``MKL_CBWR=COMPATIBLE,STRICT``). Not the AVX2 branch: MKL honours that one only on Intel
  CPUs and falls back to its automatic choice on AMD, so Intel and AMD would round GEMMs
  differently. The price is MKL's slower kernels (2048-square GEMMs ~2.4x; a network's fit
  0-35 %, see benchmarks/README.md);
- oneDNN (PyTorch's convolutions) and PyTorch's own kernels: AVX2 (``ONEDNN_MAX_CPU_ISA``,
  ``ATEN_CPU_CAPABILITY``); Arrow's compute kernels: AVX2 (``ARROW_USER_SIMD_LEVEL``);
- thread pools: ``STAGE_THREADS`` threads for BLAS, OpenMP and torch outside the fits (a fit
  pins its own declared count, ``parallel.pin_threads``), never "every core".

XGBoost, LightGBM and CatBoost need nothing: their results depend on their thread count, which
their params fix, not on the CPU's vector width. glibc's ``exp``/``log``/``pow`` pick their FMA
variant on every x86-64-v3 CPU.

These switches are read when a library loads, so they must be in the environment before numpy
or torch is imported: importing ``trendfactory`` sets them (``configure_process``), which every
stage (``python -m trendfactory.stages.<name>``), the CLI and the test suite do first. The mode
comes from ``TRENDFACTORY_NUMERICS`` in the environment (how a stage hands it to its Ray
workers), else from the ``numerics`` key of the params file (``--params`` on the command line,
else ./params.yaml), else ``portable``. ``ensure`` then checks, in the stage and in each fit,
that the process really computes that way and says in one line why not.

Outside the promise: GPU results (cuBLAS/cuDNN kernels differ by GPU model), arm64 machines
(Apple silicon, Graviton: other instructions, other last bits; portable mode still fixes their
thread counts), x86-64 CPUs older than AVX2/FMA (portable mode refuses to run there).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

MODES = ("portable", "native")
DEFAULT_MODE = "portable"
ENV_VAR = "TRENDFACTORY_NUMERICS"  # mode handed to child processes (Ray workers) and tests
STAGE_THREADS = 2  # BLAS / OpenMP / torch threads of a portable process outside its fits

# numpy >= 2.4 names its dispatch targets by x86-64 level; older releases by AVX-512 family.
_NUMPY_AVX512 = ("X86_V4", "AVX512_ICL", "AVX512_SPR")
_NUMPY_AVX512_LEGACY = ("AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR")
OPENBLAS_CORE = "Haswell"
TORCH_CAPABILITY = "AVX2"
MKL_BRANCH = "COMPATIBLE,STRICT"  # the one MKL branch that computes alike on Intel and AMD

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _numpy_avx512_names() -> tuple[str, ...]:
    try:
        major, minor = (int(p) for p in metadata.version("numpy").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return _NUMPY_AVX512
    return _NUMPY_AVX512 if (major, minor) >= (2, 4) else _NUMPY_AVX512_LEGACY


def portable_env(x86: bool = True) -> dict[str, str]:
    """The environment switches of portable mode (``x86``: with the instruction-set ones)."""
    env = {name: str(STAGE_THREADS) for name in _THREAD_ENV}
    if x86:
        env.update(
            {
                "NPY_DISABLE_CPU_FEATURES": " ".join(_numpy_avx512_names()),
                "OPENBLAS_CORETYPE": OPENBLAS_CORE,
                "MKL_CBWR": MKL_BRANCH,
                "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                "ONEDNN_MAX_CPU_ISA": "AVX2",
                "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN releases before 3.0 read this name
                "ATEN_CPU_CAPABILITY": TORCH_CAPABILITY.lower(),
                "ARROW_USER_SIMD_LEVEL": "AVX2",
            }
        )
    return env


@dataclass(frozen=True)
class State:
    """How this process was configured: the mode, where it came from, and what stops it (None:
    applied, or nothing to apply)."""

    mode: str
    source: str  # "$TRENDFACTORY_NUMERICS", "<params file>" or "default"
    problem: str | None = None


_state: State | None = None


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (None where there is none: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else None


def _params_path(argv: list[str]) -> Path:
    """The params file a stage or CLI command reads: ``--params X`` / ``--params=X``, else ./params.yaml."""
    for i, arg in enumerate(argv):
        if arg == "--params" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--params="):
            return Path(arg.split("=", 1)[1])
    return Path("params.yaml")


def mode_in_params(path: Path) -> str | None:
    """The ``numerics`` value of a params file, read without a YAML parser (this runs before
    numpy may load, on any file: a broken one is the params loader's to report). None when the
    file or the key is missing."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    match = re.search(r"^numerics:\s*['\"]?([A-Za-z_]+)", text, re.MULTILINE)
    return match.group(1) if match else None


def configure_process(argv: list[str] | None = None, environ=None) -> State:
    """Decide this process' mode and, for ``portable``, put the switches in ``environ`` (default
    ``os.environ``) so that numpy, torch and the BLAS libraries load with them. Never raises: a
    mode that cannot be applied is recorded for ``ensure`` to report."""
    global _state
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    if environ.get(ENV_VAR):
        mode, source = environ[ENV_VAR], f"${ENV_VAR}"
    else:
        path = _params_path(argv)
        mode = mode_in_params(path)
        source = str(path) if mode else "default"
        mode = mode or DEFAULT_MODE
    problem = None
    if mode == "portable":
        x86 = is_x86()
        flags = _cpu_flags() if x86 else None
        if x86 and flags is not None and not {"avx2", "fma"} <= flags:
            problem = (
                "this CPU lacks AVX2/FMA, the x86-64-v3 level portable numerics pins every library to; set "
                "numerics: native in params.yaml (results then differ in their last bits from other machines')"
            )
        else:
            environ.update(portable_env(x86))
    _state = State(mode=mode, source=source, problem=problem)
    return _state


def state() -> State:
    """This process' configuration (configured on first use if ``trendfactory`` was not imported)."""
    return _state if _state is not None else configure_process()


def child_env(mode: str) -> dict[str, str]:
    """Environment variables a child process (a Ray worker) needs to compute in ``mode``."""
    env = {ENV_VAR: mode}
    if mode == "portable":
        env.update(portable_env(is_x86()))
    return env


def active_paths() -> dict[str, str]:
    """What the loaded libraries use now: numpy's highest dispatch target, each OpenBLAS core,
    torch's CPU capability (only libraries already imported are asked)."""
    out: dict[str, str] = {}
    if "numpy" in sys.modules:
        umath = _numpy_umath()
        on = [k for k in umath.__cpu_dispatch__ if umath.__cpu_features__.get(k)]
        out["numpy"] = on[-1] if on else "baseline"
    if "numpy" in sys.modules or "scipy" in sys.modules:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("internal_api") == "openblas":
                out[f"openblas:{Path(pool['filepath']).name}"] = str(pool.get("architecture"))
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].backends.cpu.get_cpu_capability()
    return out


def _numpy_umath():
    import numpy as np

    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core to np._core
    return core._multiarray_umath


def _portable_mismatches() -> list[str]:
    """The libraries loaded in this process that do not run on the portable paths."""
    if not is_x86():
        return []
    bad = []
    for key, value in active_paths().items():
        if key == "numpy":
            umath = _numpy_umath()
            on = [n for n in _numpy_avx512_names() if umath.__cpu_features__.get(n)]
            if on:
                bad.append(f"numpy dispatches to {', '.join(on)}")
        elif key.startswith("openblas:") and value != OPENBLAS_CORE:
            bad.append(f"OpenBLAS ({key.split(':', 1)[1]}) runs {value} kernels")
        elif key == "torch" and value != TORCH_CAPABILITY:
            bad.append(f"torch runs {value} kernels")
    return bad


def ensure(mode: str) -> None:
    """Raise a one-line TrendfactoryError unless this process computes in ``mode`` (the params'
    ``numerics``): configured for it, and, for ``portable``, every loaded library on its pinned path."""
    from trendfactory.errors import TrendfactoryError

    st = state()
    if st.mode != mode:
        raise TrendfactoryError(f"numerics: params say {mode!r} but this process was started in {st.mode!r} (from {st.source}); unset {ENV_VAR} or make it agree with params.yaml's numerics")
    if mode != "portable":
        return
    if st.problem:
        raise TrendfactoryError(f"numerics: portable: {st.problem}")
    bad = _portable_mismatches()
    if bad:
        raise TrendfactoryError(
            f"numerics: portable: {'; '.join(bad)} -- numpy/torch were loaded before trendfactory set their CPU paths; import trendfactory first (the stages and the CLI do), or set numerics: native"
        )


def describe(mode: str) -> str:
    """One line for a stage's log: the mode and what it pins."""
    if mode != "portable":
        return "numerics: native (each library's fastest path for this CPU; last bits differ between CPUs)"
    if not is_x86():
        return f"numerics: portable on {platform.machine()}: {STAGE_THREADS} threads outside fits (bit-identical only to other {platform.machine()} machines)"
    return f"numerics: portable (x86-64-v3 paths: numpy without AVX-512, OpenBLAS {OPENBLAS_CORE}, MKL {MKL_BRANCH.split(',')[0].lower()}, oneDNN/torch AVX2; {STAGE_THREADS} threads outside fits)"
