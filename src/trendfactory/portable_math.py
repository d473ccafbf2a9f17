"""sqrt, log and log1p for torch tensors that give the same bits on every x86-64 CPU.

Why: PyTorch's CPU build computes a few elementwise functions through MKL's vector math
library (VML) -- ``sqrt`` always, ``log``/``log2`` on large tensors, ``atan``, ``tan``,
``asin``, ``acos`` -- and VML neither rounds correctly (``torch.sqrt`` is 1 ulp off the IEEE
root for ~1 % of float64 values and ~15 % of float32 values on the CPU this was measured on)
nor computes alike everywhere: under the same pinned MKL branch (``MKL_CBWR``), a
QEMU-emulated CPU, Intel or AMD, with or without AVX-512, gets other last bits than the real
AMD Zen 4. Every other torch function the project uses (exp, tanh, sigmoid, sin, cos, erf,
softmax, layer_norm, the GEMMs, the recurrent cells, fused AdamW's root) agreed bit for bit.

So in portable mode (``numerics: portable``) these three run through numpy on CPU tensors:
numpy's sqrt is the hardware's IEEE square root (correctly rounded, hence the same on every
CPU), and numpy's log/log1p are numpy's own code on the pinned x86-64-v3 path. Gradients are
the same formulas torch's autograd uses (``g / (2 sqrt x)``, ``g / x``, ``g / (1 + x)``), from
IEEE division. On a GPU, in ``numerics: native``, or for dtypes numpy lacks (bfloat16) they
are torch's own functions, and so while a graph is traced, exported or compiled (export's
ONNX and TorchScript files). ``tests/test_portable_math.py`` keeps the project's code from
calling torch's versions directly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from trendfactory import numerics

__all__ = ["sqrt", "log", "log1p"]

_NUMPY_DTYPES = (torch.float32, torch.float64)


def _through_numpy(x: Tensor) -> bool:
    # a traced, exported or compiled graph must hold torch's op (a numpy call would be recorded
    # as a constant): export's ONNX/TorchScript files compute it in their own runtime anyway
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    return x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES and numerics.state().mode == "portable"


def _numpy_op(fn, x: Tensor) -> Tensor:
    # .numpy() is a view (no copy); asarray: a 0-d input gives a numpy scalar, not an array
    return torch.from_numpy(np.asarray(fn(x.detach().numpy())))


class _Sqrt(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = _numpy_op(np.sqrt, x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class _Log(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return _numpy_op(np.log, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad / x


class _Log1p(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return _numpy_op(np.log1p, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad / (1 + x)


def _apply(fn: type[torch.autograd.Function], np_fn, torch_fn, x: Tensor) -> Tensor:
    if not _through_numpy(x):
        return torch_fn(x)
    if x.requires_grad and torch.is_grad_enabled():
        return fn.apply(x)
    return _numpy_op(np_fn, x)


def sqrt(x: Tensor) -> Tensor:
    """``torch.sqrt(x)``, correctly rounded on the CPU in portable mode."""
    return _apply(_Sqrt, np.sqrt, torch.sqrt, x)


def log(x: Tensor) -> Tensor:
    """``torch.log(x)``, the same bits on every x86-64 CPU in portable mode."""
    return _apply(_Log, np.log, torch.log, x)


def log1p(x: Tensor) -> Tensor:
    """``torch.log1p(x)``, the same bits on every x86-64 CPU in portable mode."""
    return _apply(_Log1p, np.log1p, torch.log1p, x)
