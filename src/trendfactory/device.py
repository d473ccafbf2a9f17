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
