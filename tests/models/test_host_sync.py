"""No host sync inside a training or validation step, for every network the shared trainer fits
(runs over the registry). A GPU runs ahead of the host only while the host never waits for a
device value; one ``.item()`` per step serialises the two. CUDA's own check
(``torch.cuda.set_sync_debug_mode``) needs a GPU, so this test counts, on the CPU, every call
that would make the host wait there: reading a value (``item``, ``tolist``, ``float(t)``,
``bool(t)``, a copy to the host) or an op whose output size the host must learn
(``nonzero``, ``unique``, ``masked_select``, boolean-mask indexing).

A fit runs twice on the same data for one epoch, with small and with large batches: whatever a
fit does once per epoch or per pass is the same in both runs, so the difference in counted
calls is what the extra steps did. It must not exceed what the model declares per forward
(``host_syncs_per_forward``: 0 -- none at all -- for every network of the default run; TimesNet's
periods set its shapes, the pre-trained models' prompts and caches live on the host).
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch.overrides import TorchFunctionMode

from tests.models.test_conformance import FAST_TRAIN, fast_model
from trendfactory.models import Samples, get_model_class, list_models

TRAINED = [n for n in list_models() if get_model_class(n).uses_trainer]
H = 5

# tensor methods and functions after which the host holds a device value (or a size it computed);
# not .numpy() or np.asarray(t): on a device tensor they fail, so a GPU path reaches them through .cpu()
READS = {"item", "tolist", "cpu", "__float__", "__int__", "__bool__", "__index__"}
SIZED = {"nonzero", "unique", "unique_consecutive", "masked_select", "argwhere"}


class HostSyncCounter(TorchFunctionMode):
    """Counts the calls that, on a GPU, make the host wait for the device."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        masked = name == "__getitem__" and _bool_index(args[1] if len(args) > 1 else None)
        if name in READS or name in SIZED or masked:
            key = "bool-mask indexing" if masked else name
            self.calls[key] = self.calls.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


def _bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.pipeline_helpers import build_stores, tiny_params

    stores = build_stores(tmp_path_factory.mktemp("host_sync"), tiny_params())
    return {s: Samples.open(stores, H, 0, s) for s in ("train", "val")}


class CudaSyncWarnings:
    """CUDA's own check: ``torch.cuda.set_sync_debug_mode("warn")`` warns at every synchronizing
    CUDA call; counted here by the message's first word."""

    def __enter__(self) -> "CudaSyncWarnings":
        self._catch = warnings.catch_warnings(record=True)
        self._records = self._catch.__enter__()
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc) -> None:
        torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(*exc)
        self.calls = {"synchronizing CUDA call": sum("synchroniz" in str(w.message) for w in self._records)}


def _counted_fit(name: str, data: dict, batch: int, monkeypatch, counter=None, device: str = "cpu") -> tuple[dict[str, int], int]:
    """(sync calls counted over one epoch of fitting and validation, forward passes run)."""
    model = fast_model(name)
    model.train_config = dataclasses.replace(FAST_TRAIN, max_epochs=1, patience=5, batch_size=batch, eval_batch_size=batch, device=device)
    forwards = [0]
    attr = "network" if hasattr(model, "network") else "build_joint"
    build = getattr(model, attr)

    def counted_build(*args, **kwargs):
        net = build(*args, **kwargs)
        net.register_forward_pre_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
        return net

    monkeypatch.setattr(model, attr, counted_build)
    counter = counter if counter is not None else HostSyncCounter()
    with counter:
        model.fit(data["train"], data["val"])
    return counter.calls, forwards[0]


def _check_extra(name: str, few: tuple[dict, int], many: tuple[dict, int]) -> None:
    (c_few, f_few), (c_many, f_many) = few, many
    assert f_many > f_few + 10, f"{name}: the two fits should differ in steps ({f_few} vs {f_many} forwards)"
    per_forward = fast_model(name).host_syncs_per_forward()
    extra = {k: c_many.get(k, 0) - c_few.get(k, 0) for k in sorted(set(c_many) | set(c_few))}
    extra = {k: v for k, v in extra.items() if v}
    assert sum(extra.values()) <= per_forward * (f_many - f_few), f"{name}: {f_many - f_few} more forward passes made these more host reads: {extra} (declared per forward: {per_forward})"


def _take_the_gpu_branches(monkeypatch) -> None:
    """The CPU-only fast paths read CPU values through numpy (free on the CPU); on a GPU they
    are torch's own ops. Measure the path a GPU takes."""
    import trendfactory.portable_math as pmath
    from trendfactory.models.common import layers

    monkeypatch.setattr(pmath, "_through_numpy", lambda x: False)  # sqrt/log/log1p: torch's
    monkeypatch.setattr(layers.Dropout, "forward", lambda self, x: torch.nn.functional.dropout(x, self.rate, self.training))


@pytest.mark.parametrize("name", TRAINED)
def test_no_host_sync_per_step(name, data, monkeypatch):
    _take_the_gpu_branches(monkeypatch)
    _check_extra(name, _counted_fit(name, data, 512, monkeypatch), _counted_fit(name, data, 32, monkeypatch))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA's own sync check)")
@pytest.mark.parametrize("name", TRAINED)
def test_no_cuda_sync_per_step(name, data, monkeypatch):
    """The same differential check on a GPU, with CUDA's own detector instead of the counter."""
    few = _counted_fit(name, data, 512, monkeypatch, CudaSyncWarnings(), "cuda")
    many = _counted_fit(name, data, 32, monkeypatch, CudaSyncWarnings(), "cuda")
    _check_extra(name, few, many)
