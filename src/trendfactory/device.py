"""The one place that turns a ``device: auto|cpu|cuda`` setting into a torch device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trendfactory.errors import ParamsError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(pref: "str | torch.device | None", key: str = "device") -> "torch.device":
    """auto (or None) -> CUDA when torch sees a GPU, else CPU; 'cuda' without a GPU fails,
    naming the params ``key`` that asked for it."""
    import torch  # here, not at import time: model code that never asks stays torch-free

    if isinstance(pref, torch.device):
        pref = pref.type if pref.index is None else str(pref)
    if pref is None or pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(pref).startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParamsError(f"{key}: got 'cuda' but torch.cuda.is_available() is False; use 'auto' or 'cpu'")
        return torch.device(pref)
    if pref == "cpu":
        return torch.device("cpu")
    raise ParamsError(f"{key}: got {pref!r}, expected one of 'auto', 'cpu', 'cuda'")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_allocator_tuned = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 32 MB for reuse instead of returning
    them to the OS.

    By default glibc serves multi-MB blocks with ``mmap`` (and trims the heap top on free), so
    every new tensor page-faults its memory in afresh. Measured on the 2-core CPU: a cumsum
    over [500, 5000] float64 ran 6x slower for it (featurize), and a dual-tower training step,
    which allocates dozens of 0.1-1 MB activations, took ~200 faults and ~5 % of its time
    (the trainer). With the mmap threshold at 32 MB and a 1 GB trim threshold they are reused:
    1-2 faults a step. RSS only grows to the process's own high-water mark. (PyTorch's CPU
    tuning guide gets the same from jemalloc or tcmalloc, which are not installed here.)
    Process-wide and idempotent; a no-op where the C library has no ``mallopt``. Returns
    whether it applied.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, nothing to tune
        return False
    _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    return _allocator_tuned
