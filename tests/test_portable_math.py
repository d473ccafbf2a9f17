"""trendfactory.portable_math: torch's VML-backed functions replaced by CPU-independent ones,
and a check that the project's code does not call torch's versions directly."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trendfactory import numerics
from trendfactory import portable_math as pmath

SRC = Path(__file__).resolve().parents[1] / "src" / "trendfactory"
# torch functions PyTorch's CPU build computes through MKL's VML (measured: other last bits on
# an emulated CPU than on the real one); the project calls portable_math's instead
VML_FUNCTIONS = {"sqrt", "sqrt_", "log", "log_", "log1p", "log1p_", "log2", "log2_", "log10", "log10_", "atan", "atan_", "tan", "tan_", "asin", "asin_", "acos", "acos_"}
NOT_TORCH = {"np", "numpy", "math", "cmath", "pmath", "portable_math"}  # modules whose .sqrt/.log are not torch's


def _values(dtype: torch.dtype, n: int = 50_000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, generator=g, dtype=torch.float64) * 10 + 1e-3).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sqrt_is_the_correctly_rounded_ieee_root(dtype):
    x = _values(dtype)
    assert torch.equal(pmath.sqrt(x), torch.from_numpy(np.sqrt(x.numpy())))
    # the IEEE root is the nearest double: its square is closer to x than either neighbour's
    x64, r = x.double()[:2000].numpy(), pmath.sqrt(x.double()[:2000]).numpy()
    up, down = np.nextafter(r, np.inf), np.nextafter(r, 0)
    err = np.abs(r.astype(np.longdouble) ** 2 - x64)
    assert np.all(err <= np.abs(up.astype(np.longdouble) ** 2 - x64)) and np.all(err <= np.abs(down.astype(np.longdouble) ** 2 - x64))


@pytest.mark.parametrize("fn,ref", [(pmath.log, np.log), (pmath.log1p, np.log1p)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_functions_are_numpys(fn, ref, dtype):
    x = _values(dtype)
    out = fn(x)
    assert out.dtype == dtype and torch.equal(out, torch.from_numpy(ref(x.numpy())))
    assert torch.allclose(out, getattr(torch, fn.__name__)(x), rtol=1e-6 if dtype == torch.float32 else 1e-14)


def test_shapes_strides_and_zero_dim_tensors():
    m = _values(torch.float64, 12).view(3, 4)
    assert torch.equal(pmath.sqrt(m.t()), torch.sqrt(m.t()).new_tensor(np.sqrt(m.t().numpy())))
    assert pmath.sqrt(m.t()).shape == (4, 3)
    zero_d = pmath.log(torch.tensor(2.0, dtype=torch.float64))
    assert zero_d.shape == () and zero_d.item() == np.log(2.0)


@pytest.mark.parametrize("fn", [pmath.sqrt, pmath.log, pmath.log1p])
def test_gradients_are_torchs_formulas(fn):
    x = _values(torch.float64, 500).requires_grad_(True)
    ours = torch.autograd.grad(fn(x).pow(2).sum(), x)[0]
    theirs = torch.autograd.grad(getattr(torch, fn.__name__)(x).pow(2).sum(), x)[0]
    assert torch.allclose(ours, theirs, rtol=1e-12)
    with torch.no_grad():  # no graph: the plain numpy path
        assert fn(x).grad_fn is None


def test_native_mode_gpu_and_bfloat16_use_torchs_own(monkeypatch):
    x = _values(torch.float64, 1000)
    assert numerics.state().mode == "portable"
    monkeypatch.setattr(numerics, "state", lambda: numerics.State(mode="native", source="test"))
    assert torch.equal(pmath.sqrt(x), torch.sqrt(x))
    monkeypatch.undo()
    b = x.to(torch.bfloat16)
    assert torch.equal(pmath.log(b), torch.log(b))


def test_a_traced_graph_holds_torchs_op_not_a_constant():
    """export traces the networks (TorchScript, ONNX): the numpy path would freeze the example's result."""
    traced = torch.jit.trace(lambda t: pmath.sqrt(t) + pmath.log(t), (_values(torch.float64, 8),), check_trace=False)
    other = _values(torch.float64, 20) + 5
    assert torch.allclose(traced(other), torch.sqrt(other) + torch.log(other))
    assert "aten::sqrt" in str(traced.graph) and "aten::log" in str(traced.graph)


def _torch_vml_calls(path: Path, root: Path = SRC.parent) -> list[str]:
    """`torch.sqrt(...)`-style calls and `.sqrt()`-style method calls on tensors in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in VML_FUNCTIONS:
            base = node.func.value
            if isinstance(base, ast.Name) and base.id in NOT_TORCH:
                continue
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_the_projects_code_calls_no_vml_backed_torch_function():
    """Any torch.sqrt/log/... in src would bring back CPU-dependent bits in portable mode."""
    calls = [c for p in sorted(SRC.rglob("*.py")) if p.name != "portable_math.py" for c in _torch_vml_calls(p)]
    assert calls == [], "use trendfactory.portable_math (sqrt, log, log1p) instead of torch's:\n" + "\n".join(calls)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import torch, numpy as np, math\na = torch.sqrt(x)\nb = x.log1p()\nc = np.sqrt(y)\nd = math.log(2)\ne = (x + 1).sqrt_()\n")
    hits = sorted(_torch_vml_calls(f, root=tmp_path), key=lambda h: int(h.split(":")[1]))
    assert hits == ["m.py:2: torch.sqrt(...)", "m.py:3: x.log1p(...)", "m.py:6: (x + 1).sqrt_(...)"]


# ---- the same bits on an emulated CPU --------------------------------------------------------

EMULATION_SCRIPT = """
import hashlib, sys
import trendfactory, numpy as np, torch
from trendfactory import portable_math as pmath
from trendfactory.data.synthetic import generate_bars
from trendfactory.features.stock import compute_stock_features
from trendfactory.params import FeaturesConfig, SyntheticConfig
out = {}
g = torch.Generator().manual_seed(0)
for dt in (torch.float32, torch.float64):
    for n in (1000, 200_000):  # VML takes log only above a size; sqrt always
        x = (torch.rand(n, generator=g, dtype=torch.float64) * 10 + 1e-3).to(dt)
        for name in ("sqrt", "log", "log1p"):
            out[f"{name}/{dt}/{n}"] = getattr(pmath, name)(x).numpy().tobytes()
bars = generate_bars(SyntheticConfig(n_symbols=4, n_bars=700), seed=0)
frame = compute_stock_features(bars, FeaturesConfig(device="cpu")).frame
for col in frame.columns:
    out[col] = frame[col].to_numpy(dtype=np.float64).tobytes()
for key in sorted(out):
    print(key, hashlib.md5(out[key]).hexdigest())
"""


def _qemu() -> str | None:
    qemu = shutil.which("qemu-x86_64")
    if qemu is None or not numerics.is_x86():
        return None
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.split()
    major = int(version[2].split(".")[0]) if len(version) > 2 and version[2][:1].isdigit() else 0
    return qemu if major >= 8 else None


@pytest.mark.skipif(_qemu() is None, reason="needs QEMU >= 8 user mode (qemu-x86_64) on an x86-64 machine")
def test_features_and_portable_math_are_the_same_bits_on_an_emulated_cpu():
    """Real CPU against a QEMU-emulated AMD Zen 2 (AVX2, no AVX-512): torch.sqrt (MKL VML) gave
    the rolling volatilities and Bollinger bands other last bits there; portable_math does not."""
    env = {k: v for k, v in os.environ.items() if k not in {numerics.ENV_VAR, *numerics.portable_env(x86=True)}}
    runs = {}
    for name, prefix in (("native", []), ("emulated", [_qemu(), "-cpu", "EPYC-Rome"])):
        proc = subprocess.run([*prefix, sys.executable, "-c", EMULATION_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert len(runs["native"]) > 30
    differ = sorted(k for k in runs["native"] if runs["native"][k] != runs["emulated"].get(k))
    assert differ == [], f"{len(differ)} outputs differ on the emulated CPU: {differ}"
