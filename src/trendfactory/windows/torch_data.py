"""Torch views of a window store: ``WindowDataset`` (generic, one window per item) and
``BatchGatherer`` (fast: one tensor-indexing op a batch). Kept out of
:mod:`trendfactory.windows.reader` so that tabular models and their stages never import torch.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from trendfactory.device import resolve_device
from trendfactory.windows.reader import WindowSplit
from trendfactory.windows.store import MISSING_LABEL

__all__ = ["BatchGatherer", "WindowDataset", "fits_on_device"]

# A fold's feature matrix goes onto the device when it takes at most this share of the
# device's free memory: the rest is the networks' (activations, optimizer state, other fits).
RESIDENT_SHARE = 0.25

# feature matrices already on a device, shared by the gatherers of one fold (its train and
# validation views read one in-memory matrix): (id of the array, device) -> (weakref, tensor)
_resident: dict[tuple[int, str], tuple[weakref.ref, torch.Tensor]] = {}


def _features_tensor(split: WindowSplit) -> torch.Tensor:
    """torch view over the read-only memmap (zero copy; only ever read)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(split.features)


def _class_targets(split: WindowSplit, horizon: int, ends: np.ndarray) -> np.ndarray:
    lab = np.asarray(split.labels(horizon)[ends])
    if lab.size and (lab == MISSING_LABEL).any():  # cannot happen for index(horizon)
        raise ValueError("window ends include rows with a missing label")
    return lab.astype(np.int64) + 1  # -1/0/+1 -> 0/1/2


def fits_on_device(features: np.ndarray, device: torch.device) -> bool:
    """Whether a feature matrix should live on ``device`` (``BatchGatherer``'s ``resident=None``):
    on a GPU, when it takes at most ``RESIDENT_SHARE`` of the free memory. On the CPU the
    memory map is already where the gather runs: nothing to gain from a copy."""
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return features.nbytes <= RESIDENT_SHARE * free


def _device_features(features: np.ndarray, device: torch.device) -> torch.Tensor:
    """``features`` [N, F] as one tensor on ``device``, copied once per array and device."""
    key = (id(features), str(device))
    hit = _resident.get(key)
    if hit is not None and hit[0]() is features:
        return hit[1]
    for k in [k for k, (ref, _) in _resident.items() if ref() is None]:  # arrays since freed
        del _resident[k]
    tensor = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32).copy()).to(device)
    _resident[key] = (weakref.ref(features), tensor)
    return tensor


class WindowDataset(torch.utils.data.Dataset):
    """Map-style dataset: item i = (x [seq_len, F] float32, y int64 in {0,1,2} = label+1)
    for window ``split.index(horizon)[i]``. Generic; :class:`BatchGatherer` is much faster."""

    def __init__(self, split: WindowSplit, horizon: int) -> None:
        self.split = split
        self.horizon = int(horizon)
        self.ends = np.asarray(split.index(horizon))
        self._y = _class_targets(split, horizon, self.ends)

    def __len__(self) -> int:
        return int(self.ends.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        e = int(self.ends[i])
        L = self.split.seq_len
        x = np.array(self.split.features[e - L + 1 : e + 1], dtype=np.float32)  # copy
        return torch.from_numpy(x), torch.tensor(self._y[i], dtype=torch.int64)


class _BufferPool:
    """CPU batch buffers, recycled once the consumer has dropped every tensor using one.

    A fresh multi-MB tensor per batch costs page faults (the allocator returns large blocks
    to the OS), which made gathering ~5x slower. Each handed-out tensor wraps a new numpy
    view of a pooled buffer; torch holds that view until the tensor's storage (and every view
    of it, e.g. one saved for backward) is freed, so a dead weakref to it means the buffer is
    free again. Batches a consumer keeps are never overwritten.
    """

    def __init__(self, numel: int, max_buffers: int = 4) -> None:
        self.numel = numel
        self.max_buffers = max_buffers
        self._slots: list[list[Any]] = []  # [base ndarray, weakref to the live view or None]

    def get(self, numel: int) -> torch.Tensor:
        for slot in self._slots:
            if slot[1] is None or slot[1]() is None:
                view = slot[0][:numel]
                slot[1] = weakref.ref(view)
                return torch.from_numpy(view)
        base = np.empty(self.numel, dtype=np.float32)
        view = base[:numel]
        if len(self._slots) < self.max_buffers:
            self._slots.append([base, weakref.ref(view)])
        return torch.from_numpy(view)


class BatchGatherer:
    """Iterate ``(x, y)`` batches of one split: x [B, seq_len, F] float32 windows (or, with
    ``lags``, [B, F*(1+len(lags))] tabular rows), y [B] int64 in {0,1,2} (label + 1).

    Each batch is ONE ``index_select`` over a torch view of the memmap. Windows: the window
    view ``[N-L+1, L*F]`` (strides ``(F, 1)``, zero copy), indexed by ``ends - (L-1)`` -- the
    same gather as row indices ``ends[:, None] + arange(-L+1, 1)`` on ``[N, F]``, each window
    copied as one contiguous block. Tabular rows: ``[N, F]`` indexed by ``ends - lag`` for the
    row and each lag, then viewed as one row per sample. On CPU the batch lands in a recycled
    buffer (see ``_BufferPool``); on CUDA in pinned host memory, copied with ``non_blocking``.

    Device-resident (``resident=True``; ``None``: when :func:`fits_on_device`): the feature
    matrix, the targets and the window ends are copied to the device once, each epoch's order
    once per epoch, and every batch is the same one gather run on the device -- no host gather,
    no pinning, no copy per step. The windows and their order are the same either way (the
    permutation is drawn on the CPU as before), so a batch holds the same bytes.

    Samples are ``split.index(horizon)`` unless ``ends`` names them. With several horizons
    (a list), y and the scores are [B, H], one column per horizon (``ends`` required). Order is deterministic:
    epoch k shuffles with a generator seeded from (seed, k); every ``iter()`` uses the current
    epoch and advances it (or call ``set_epoch``). ``with_scores=True`` adds the [B] float32
    target ``score_h``, ``with_ends=True`` the [B] int64 end rows (to key predictions:
    ``split.frame(ends)``), in that order after ``(x, y)``. ``samples_per_epoch`` caps a
    shuffled epoch at a fresh random subset of that many samples (the epoch's permutation's prefix).
    """

    def __init__(
        self,
        split: WindowSplit,
        horizon: int | Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        device: str | torch.device | None = "cpu",
        drop_last: bool = False,
        with_ends: bool = False,
        ends: np.ndarray | None = None,
        lags: tuple[int, ...] | None = None,
        with_scores: bool = False,
        samples_per_epoch: int | None = None,
        resident: bool | None = None,
    ) -> None:
        # Long on purpose: validates and lays out every tensor the gatherer keeps on the device, in one place.
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.split = split
        multi = not isinstance(horizon, (int, np.integer))
        self.horizons = [int(h) for h in horizon] if multi else [int(horizon)]
        self.horizon = self.horizons[0]
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.drop_last = bool(drop_last)
        self.with_ends = bool(with_ends)
        self.with_scores = bool(with_scores)
        self.epoch = 0
        # a fresh random subset of this many samples per epoch (shuffled epochs only): an epoch's
        # cost stops growing with the universe; None or >= n: every sample, as without it
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be None or an int >= 1, got {samples_per_epoch!r}")
        self.samples_per_epoch = samples_per_epoch
        if ends is None:
            if multi:
                raise ValueError("several horizons need explicit ends (rows labelled for all of them)")
            ends = split.index(self.horizon)
        ends = np.asarray(ends, dtype=np.int64)
        self._ends = torch.from_numpy(ends.copy())
        # targets [n] for one horizon, [n, H] for several (one column per horizon)
        y = np.stack([_class_targets(split, h, ends) for h in self.horizons], axis=1)
        self._y = torch.from_numpy(y if multi else y[:, 0].copy())
        if with_scores:
            sc = np.stack([np.asarray(split.scores(h)[ends], dtype=np.float32) for h in self.horizons], axis=1)
            self._s = torch.from_numpy(sc if multi else sc[:, 0].copy())
        else:
            self._s = None
        L, F = split.seq_len, split.n_features
        x = _features_tensor(split)  # [N, F], shares the memmap
        if lags is None:
            n_win = max(split.n_rows - L + 1, 0)
            self._src = x.as_strided((n_win, L * F), (F, 1))  # [N-L+1, L*F] window view, zero copy
            self._offsets = torch.tensor([L - 1])  # window e starts at row e-(L-1) of the view
            self._shape = (L, F)
        else:
            split._check_lags(lags)
            self._src = x  # [N, F]
            self._offsets = torch.tensor([0, *lags], dtype=torch.int64)  # row e, then e-lag
            self._shape = (len(self._offsets) * F,)
        self.resident = fits_on_device(split.features, self.device) if resident is None else bool(resident)
        if self.resident:  # everything a batch reads, on the device once (see the class docstring)
            x = _device_features(split.features, self.device)  # [N, F]
            self._src = x.as_strided(self._src.shape, self._src.stride())
            self._offsets, self._y = self._offsets.to(self.device), self._y.to(self.device)
            self._s = self._s.to(self.device) if self._s is not None else None
            self._ends_dev = self._ends.to(self.device)
        self._pin = self.device.type == "cuda" and not self.resident
        self._pool = _BufferPool(self.batch_size * L * F if lags is None else self.batch_size * self._shape[0])

    def _epoch_size(self) -> int:
        n = int(self._ends.numel())
        return min(n, self.samples_per_epoch) if self.shuffle and self.samples_per_epoch else n

    def __len__(self) -> int:
        n = self._epoch_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> torch.Tensor:
        """Positions into the samples in the order batches take them, for an epoch."""
        n = int(self._ends.numel())
        if not self.shuffle:
            return torch.arange(n)
        e = self.epoch if epoch is None else int(epoch)
        state = np.random.SeedSequence([self.seed, e]).generate_state(1, dtype=np.uint64)[0]
        g = torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
        return torch.randperm(n, generator=g)[: self._epoch_size()]  # the epoch's subset: a prefix of its permutation

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        # a generator: the epoch's order is drawn (and the epoch advanced) at the first batch,
        # not at iter() -- tqdm.auto calls iter() on what it wraps and never reads that iterator,
        # so an eager draw would skip an epoch's permutation every epoch
        order = self.order()
        self.epoch += 1
        if self.resident:
            yield from self._resident_batches(order)
        else:
            yield from self._host_batches(order)

    def _host_batches(self, order: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batches gathered on the host from the memory map (then copied to the device)."""
        n = order.numel()
        stop = n - n % self.batch_size if self.drop_last else n
        width = self._src.shape[1]
        k = self._offsets.numel()
        # everything but the features permuted once per epoch; a batch then takes contiguous
        # slices (views) of these, and its only per-batch work is the one gather
        ends_all = self._ends[order]  # [n]
        rows_all = (ends_all[:, None] - self._offsets[None, :]).reshape(-1)  # [n * k] source rows
        y_all = self._y[order]  # [n] or [n, H]
        s_all = self._s[order] if self.with_scores else None
        for start in range(0, stop, self.batch_size):
            ends = ends_all[start : start + self.batch_size]  # [B]
            b = ends.numel()
            rows = rows_all[start * k : (start + b) * k]  # [B * k]
            numel = rows.numel() * width
            if self._pin:
                out = torch.empty((rows.numel(), width), dtype=torch.float32, pin_memory=True)
            else:
                out = self._pool.get(numel).view(rows.numel(), width)
            torch.index_select(self._src, 0, rows, out=out)  # the one gather
            x = out.view(b, *self._shape)
            extra = [y_all[start : start + b]]
            if s_all is not None:
                extra.append(s_all[start : start + b])
            if self._pin:
                x = x.to(self.device, non_blocking=True)
                extra = [t.pin_memory().to(self.device, non_blocking=True) for t in extra]
            elif self.device.type != "cpu":
                x, extra = x.to(self.device), [t.to(self.device) for t in extra]
            del out
            yield (x, *extra, ends) if self.with_ends else (x, *extra)
            del x, extra

    def _resident_batches(self, order: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batches gathered on the device from the resident features: the host's only work per
        step is slicing (views), so it never waits for the device."""
        n = order.numel()
        stop = n - n % self.batch_size if self.drop_last else n
        k = self._offsets.numel()
        order_dev = order.to(self.device, non_blocking=True)  # the epoch's one host-to-device copy
        ends_host = self._ends[order] if self.with_ends else None  # [n] on the host, to key predictions
        rows_all = (self._ends_dev[order_dev][:, None] - self._offsets[None, :]).reshape(-1)  # [n * k] source rows
        y_all = self._y[order_dev]  # [n] or [n, H]
        s_all = self._s[order_dev] if self.with_scores else None
        for start in range(0, stop, self.batch_size):
            b = min(self.batch_size, n - start)
            x = torch.index_select(self._src, 0, rows_all[start * k : (start + b) * k]).view(b, *self._shape)  # the one gather
            extra = [y_all[start : start + b]]
            if s_all is not None:
                extra.append(s_all[start : start + b])
            yield (x, *extra, ends_host[start : start + b]) if ends_host is not None else (x, *extra)
