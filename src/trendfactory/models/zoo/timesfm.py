"""Pre-trained: TimesFM 2.5 (Das et al., ICML 2024; Google's decoder-only forecaster), zero-shot
against the labels' own barrier, optionally with a small fine-tuned head.

**Which checkpoint, and through what code.** The current release, TimesFM 2.5 (200M parameters,
16k context, a continuous quantile head), not the 2.0 (500M) checkpoint: 2.5 is the one the
official ``timesfm`` package (3.x) serves in PyTorch, and that package installs cleanly on the
locked environment (it needs numpy, torch, safetensors and huggingface_hub, all locked already).
Its network class is used as it is (``TimesFM_2p5_200M_torch_module``: the patch tokenizer, the
stacked transformer with rotary positions and QK norm, the point and quantile projections, and
its ``decode``, which normalises each patch by the running statistics of the context). Two things
come from here instead of the package's ``TimesFM_2p5_200M_torch`` wrapper:

- **Loading:** ``checkpoint`` is a Hugging Face id (``google/timesfm-2.5-200m-pytorch``, whose
  ``model.safetensors`` is fetched by huggingface_hub, or taken from its cache offline) or a local
  directory holding ``model.safetensors``. The layer sizes are read from the tensors' shapes (the
  wrapper hard-codes the 200M sizes), so a smaller checkpoint of the same architecture -- the
  tests write one -- loads through exactly the same path; the weights load with
  ``strict=True``. The wrapper's ``compile`` also moves the model to ``cuda:0`` whenever CUDA
  exists and can ``torch.compile`` it; here the model goes to ``train.device``.
- **Forecasting:** the wrapper's ``forecast`` works on numpy lists of one series each. Here the
  same steps run on the batch's tensors: the series is left-padded to a whole number of 32-bar
  patches with the padding masked (as the wrapper does), normalised by the mean and standard
  deviation of its real bars (``normalize_inputs``; the wrapper's statistics also count the zero
  padding, so the two agree on series of whole patches), decoded once, the continuous quantile head's
  spreads put around the point forecast (``use_continuous_quantile_head``), averaged with the
  forecast of the negated series (``force_flip_invariance``, the package's default; set
  ``flip_invariance: false`` to halve the cost), quantile crossings removed, de-normalised.
  ``infer_is_positive`` is off: the series is a log price relative to the window's start.

**The series.** TimesFM forecasts one univariate series: here the log close, rebuilt inside each
window as the running sum of the 1-bar log return (``stk_ret_1``, back in its own units through
the fold's scaler; the scaler's clip at +-``features.clip`` standard deviations caps the rare
larger daily moves). Its context is the window: ``window.seq_len`` bars (30 by default) -- TimesFM
reads up to 16k, so a longer window (``-S window.seq_len=...``, which reruns every model) gives
it more history. The forecast runs ``label.entry_lag + max(label.horizons)`` bars ahead (at most
128, one output patch: no autoregressive steps).

**Zero-shot: from the forecast to the factory's three classes.** A label is the first barrier of
``+-k * sigma_t * sqrt(h)`` the log price touches between the entry bar and ``h`` bars later
(features/labels.py; ``k``, the entry lag and sigma's span come from the window store, which
records how its labels were made). For each horizon the forecast gives the log return from
entry to exit: its median (the exit's median minus the entry's) and its spread (the 10-90 %
quantile range over 2 x 1.2816, the standard deviation of a normal with those quantiles).
sigma_t is the labels' volatility -- the EWM standard deviation of the 1-bar log returns with span
``label.vol_span`` -- over the window's returns. Under that normal, the chance of ending above
the upper barrier, doubled (the reflection principle: a random walk that ends above a level
crossed it, and crossed it as often again without ending there), is the chance of touching it;
likewise below. When the two add up to more than one they are scaled to sum to one; the rest is
the chance of touching neither: flat. The logits are the log of these probabilities and the
score is p_up - p_down. It is an approximation (it ignores drift in the doubling and the
chance of touching both barriers), stated so that the fine-tune has something to correct.

**Fine-tune** (``finetune: head``, the default; ``none`` is zero-shot alone): the backbone stays
frozen and a small head learns a correction to the zero-shot logits, early-stopped on the
validation block by the shared trainer like every network. The head sees, per horizon, the
zero-shot log probabilities and the forecast's median and spread in barrier units, and the
backbone's output embedding of the last input patch (layer-normalised); its output layer starts
at zero, so training starts from the zero-shot mapping. Only the head trains; a saved fit holds
the head only, and loading rebuilds the backbone from ``checkpoint``. The frozen part's outputs
depend on the window alone, so a fit computes them once per window and keeps them for its later
epochs and validation passes (``cache_windows``, ~5 KB a window at the release's width).

The backbone runs in fp32 on ``train.device`` (the official decode allocates its caches in
fp32); the head follows ``train.precision``. Not in the default run lists (a 200M-parameter
download, and the cost: docs/models.md); run it with
``dvc exp run -S 'run.neural_models=[...,timesfm]'``.

Export: the official decode loops over patches in Python and allocates its caches per call,
which neither ONNX nor traced TorchScript expresses faithfully.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from trendfactory import portable_math as pmath
from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import FitContext
from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import NeuralModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.params import DROPOUT, LabelConfig, check, choice, pos_field

WEIGHTS = "model.safetensors"  # the official PyTorch release's weights file
RETURN = "stk_ret_1"  # the 1-bar log return: the series TimesFM forecasts is its running sum
Q10, Q50, Q90 = 1, 5, 9  # columns of the forecast: the mean, then the 0.1 .. 0.9 quantiles
Z90 = 1.2815515655446004  # the standard normal's 0.9 quantile


@dataclass(frozen=True)
class TimesFMConfig:
    checkpoint: str = "google/timesfm-2.5-200m-pytorch"  # Hugging Face id or local directory holding model.safetensors
    finetune: str = field(default="head", metadata=choice("none", "head"))  # none: the zero-shot mapping alone | head: a small head corrects it (trained)
    hidden: int = pos_field(64)  # the fine-tune head's hidden width
    flip_invariance: bool = True  # average with the negated series' forecast (TimesFM's default; false halves the cost)
    dropout: float = field(default=0.1, metadata=DROPOUT)
    cache_windows: int = field(default=200_000, metadata=check(lambda v: v >= 0, "an integer >= 0"))  # a fit keeps the frozen forecast of this many windows (~5 KB each): later epochs skip it; 0: off


def _definition(tensors: dict[str, torch.Tensor], source: Path):
    """TimesFM 2.5's definition with the layer sizes of these weights (the 200M checkpoint's own
    sizes for the official release; the tests' tiny checkpoint's for theirs)."""
    from timesfm.timesfm_2p5.timesfm_2p5_base import TimesFM_2p5_200M_Definition

    def dim(key: str) -> int:
        if key not in tensors:
            raise TrendfactoryError(f"models.timesfm.checkpoint: {source} has no tensor {key!r}; it is not a TimesFM 2.5 checkpoint")
        return int(tensors[key].shape[0])

    d = TimesFM_2p5_200M_Definition()
    width = dim("tokenizer.output_layer.weight")
    layers = 1 + max((int(m.group(1)) for k in tensors if (m := re.match(r"stacked_xf\.(\d+)\.", k))), default=-1)
    head_dim = dim("stacked_xf.0.attn.per_dim_scale.per_dim_scale")
    block = dataclasses.replace(d.stacked_transformers.transformer, model_dims=width, hidden_dims=dim("stacked_xf.0.ff0.weight"), num_heads=width // head_dim)
    return dataclasses.replace(
        d,
        tokenizer=dataclasses.replace(d.tokenizer, hidden_dims=dim("tokenizer.hidden_layer.weight"), output_dims=width),
        stacked_transformers=dataclasses.replace(d.stacked_transformers, num_layers=layers, transformer=block),
        output_projection_point=dataclasses.replace(d.output_projection_point, input_dims=width, hidden_dims=dim("output_projection_point.hidden_layer.weight")),
        output_projection_quantiles=dataclasses.replace(d.output_projection_quantiles, input_dims=width, hidden_dims=dim("output_projection_quantiles.hidden_layer.weight")),
    )


def load_timesfm(ref: str) -> nn.Module:
    """The official TimesFM 2.5 network with the weights of ``ref`` (a Hugging Face id or a local
    directory holding model.safetensors), frozen, in eval mode; one clear line when it cannot be had."""
    from huggingface_hub.errors import HfHubHTTPError
    from safetensors.torch import load_file
    from timesfm.timesfm_2p5.timesfm_2p5_torch import TimesFM_2p5_200M_torch_module

    local = Path(ref).expanduser()
    if local.is_absolute() or ref.startswith(".") or local.exists():
        weights = local / WEIGHTS
        if not weights.is_file():
            raise TrendfactoryError(
                f"models.timesfm.checkpoint: {ref!r} holds no {WEIGHTS}; give a Hugging Face id such as "
                "google/timesfm-2.5-200m-pytorch, or a directory holding the official release's model.safetensors"
            )
    else:
        from huggingface_hub import hf_hub_download

        try:
            weights = Path(hf_hub_download(ref, WEIGHTS))
        except (OSError, ValueError, HfHubHTTPError) as exc:  # offline and not cached, unknown id, no network
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrendfactoryError(
                f"models.timesfm.checkpoint: cannot load {ref!r} ({reason[:160]}); where there is a network, "
                f"`huggingface-cli download {ref} --local-dir <dir>` and set models.timesfm.checkpoint to <dir> "
                "(or run once online to fill the Hugging Face cache)"
            ) from None
    tensors = load_file(str(weights))
    # the official network class as it is, with these weights' sizes in place of its 200M constants
    module_class = type("TimesFM_2p5_module", (TimesFM_2p5_200M_torch_module,), {"config": _definition(tensors, weights)})
    module = module_class()
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise TrendfactoryError(f"models.timesfm.checkpoint: {weights} does not fit TimesFM 2.5 ({str(exc).splitlines()[0][:160]})") from None
    module.requires_grad_(False)
    return module.eval()


@dataclass(frozen=True)
class SeriesInputs:
    """Where the series and the barrier come from: the return column of the window, its fold
    scaler, and how the store's labels were made (saved with a fit: new data is read the same way)."""

    column: int = 0
    mean: float = 0.0
    std: float = 1.0
    entry_lag: int = LabelConfig.entry_lag
    barrier_k: float = LabelConfig.barrier_k
    vol_span: int = LabelConfig.vol_span

    @classmethod
    def of(cls, samples: Samples) -> "SeriesInputs":
        split = samples.split
        if RETURN not in samples.feature_names:
            raise TrendfactoryError(f"models.timesfm: the window store {split.directory} has no feature {RETURN!r}; keep 1 in features.return_lookbacks")
        label = split.meta.get("label")
        if label is None:
            raise TrendfactoryError(f"models.timesfm: {split.directory}/meta.json does not say how its labels were made (no 'label'); rerun the window stage")
        mean, std = split.meta["scaler"].get(RETURN, (0.0, 1.0))[:2]
        return cls(samples.feature_names.index(RETURN), float(mean), float(std), int(label["entry_lag"]), float(label["barrier_k"]), int(label["vol_span"]))


def ewm_std(r: torch.Tensor, span: int) -> torch.Tensor:
    """[B] the exponentially weighted standard deviation of each row of r [B, L] at its last
    column (pandas' ``ewm(span).std()``: adjusted weights, bias-corrected), the labels' sigma_t."""
    alpha = 2.0 / (span + 1.0)
    w = (1.0 - alpha) ** torch.arange(r.shape[1] - 1, -1, -1, dtype=r.dtype, device=r.device)  # [L], newest 1
    sw, sw2 = w.sum(), (w * w).sum()
    mu = (r * w).sum(dim=1, keepdim=True) / sw  # [B, 1]
    biased = ((r - mu) ** 2 * w).sum(dim=1) / sw  # [B]
    return pmath.sqrt(biased * sw * sw / (sw * sw - sw2).clamp_min(1e-12))  # one bar: no spread


class TimesFMNet(nn.Module):
    """Window -> log-price series -> frozen TimesFM forecast -> per-horizon class probabilities
    against the barrier (zero-shot), plus the fine-tuned head's correction."""

    def __init__(self, backbone: nn.Module, horizons: list[int], inputs: SeriesInputs, c: TimesFMConfig) -> None:
        super().__init__()
        # the backbone is not a registered submodule: it never trains and is rebuilt from
        # `checkpoint` on load, so state_dict, checkpoints and saved fits hold the head only
        object.__setattr__(self, "backbone", backbone)
        self.horizons, self.inputs, self.flip = list(horizons), inputs, c.flip_invariance
        self.steps = inputs.entry_lag + max(self.horizons)  # bars forecast
        if self.steps > backbone.o:
            raise TrendfactoryError(f"models.timesfm: label.entry_lag + the longest horizon is {self.steps} bars; TimesFM forecasts at most {backbone.o} in one step")
        self.zero_shot = c.finetune == "none"
        n = len(self.horizons)
        self.norm = nn.LayerNorm(backbone.md)
        self.body = nn.Sequential(nn.Linear(5 * n + backbone.md, c.hidden), nn.GELU(), Dropout(c.dropout))
        self.head = TrendHead(c.hidden, n)
        nn.init.zeros_(self.head.proj.weight)  # the fine-tune starts from the zero-shot mapping
        nn.init.zeros_(self.head.proj.bias)
        # the frozen part's outputs per window, kept while a fit runs (TimesFM._fit): off otherwise
        self.cache: dict[bytes, tuple[torch.Tensor, ...]] | None = None
        self.cache_windows = c.cache_windows

    def _apply(self, fn, recurse: bool = True):
        # .to(device) / .cuda() reach the backbone too (kept in fp32: see forecast)
        super()._apply(fn, recurse)
        self.backbone._apply(lambda t: fn(t).float() if t.is_floating_point() else fn(t))
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()
        return self

    def _decode(self, x: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The official decode of normalised, padded series x [B, C]: (forecast [B, S, 10] with the
        continuous quantile head's spreads around the point forecast, the last input patch's
        output embedding [B, md], captured from the last transformer layer)."""
        captured = []
        hook = self.backbone.stacked_xf[-1].register_forward_hook(lambda _m, _i, out: captured.append(out[0]))
        try:
            points, spreads, _ = self.backbone.decode(self.steps, x, masks)  # [B, C/32, 128, 10], [B, 1024, 10]
        finally:
            hook.remove()
        out = points[:, -1, : self.steps].clone()  # the last patch's forecast: [B, S, 10]
        out[..., 1:] = spreads[:, : self.steps, 1:] - spreads[:, : self.steps, Q50 : Q50 + 1] + out[..., Q50 : Q50 + 1]
        return out, captured[0][:, -1]

    @torch.no_grad()
    def forecast(self, series: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantile forecast [B, S, 10] of the next S values, embedding [B, md]) of series [B, T]."""
        from timesfm.torch.util import revin

        with torch.autocast(series.device.type, enabled=False):
            series = series.float()
            b, t = series.shape
            p = self.backbone.p  # 32 bars per input patch
            pad = -t % p
            x = nn.functional.pad(series, (pad, 0))  # [B, C]: left-padded to whole patches, as the official forecast
            masks = torch.zeros_like(x, dtype=torch.bool)
            masks[:, :pad] = True  # the padding is masked
            mu, sigma = series.mean(dim=1, keepdim=True), series.std(dim=1, keepdim=True)  # [B, 1]
            x = torch.where(masks, 0.0, revin(x, mu, sigma))  # normalize_inputs
            out, embedding = self._decode(x, masks)
            if self.flip:  # force_flip_invariance: f(x) = -f(-x), the quantiles mirrored
                flipped, _ = self._decode(-x, masks)
                flipped = torch.cat([flipped[..., :1], torch.flip(flipped[..., 1:], dims=(-1,))], dim=-1)
                out = (out - flipped) / 2
            out = torch.cat([out[..., :1], torch.sort(out[..., 1:], dim=-1).values], dim=-1)  # no quantile crossing
            return revin(out, mu[..., None], sigma[..., None], reverse=True), embedding

    @torch.no_grad()
    def frozen(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the frozen forecaster makes of returns r [B, L]: (zero-shot logits [B, H, 3], the
        forecast's median and spread in barrier units [B, 2H], the last patch's embedding [B, md])."""
        i = self.inputs
        series = torch.cat([r.new_zeros(len(r), 1), torch.cumsum(r, dim=1)], dim=1)  # [B, L+1]: log close vs the bar before the window
        q, embedding = self.forecast(series)  # [B, S, 10], [B, md]
        sigma = ewm_std(r, i.vol_span).clamp_min(1e-8)  # [B]: the labels' sigma_t
        # step j of the forecast is bar t+1+j; the entry bar is t+lag (t itself when lag is 0)
        entry = q[:, i.entry_lag - 1, Q50] if i.entry_lag > 0 else series[:, -1]  # [B]
        logits, summary = [], []
        for h in self.horizons:
            exit_ = q[:, i.entry_lag + h - 1]  # [B, 10]
            median = exit_[:, Q50] - entry  # [B]: log return entry -> exit
            spread = ((exit_[:, Q90] - exit_[:, Q10]) / (2 * Z90)).clamp_min(1e-8)
            barrier = i.barrier_k * sigma * math.sqrt(h)
            p_up = torch.clamp(2 * 0.5 * torch.erfc((barrier - median) / (spread * math.sqrt(2))), max=1.0)  # 2 P(end above)
            p_down = torch.clamp(2 * 0.5 * torch.erfc((barrier + median) / (spread * math.sqrt(2))), max=1.0)  # 2 P(end below)
            scale = torch.where(p_up + p_down > 1, 1 / (p_up + p_down), torch.ones_like(p_up))
            p = torch.stack([p_down * scale, 1 - (p_up + p_down) * scale, p_up * scale], dim=1).clamp_min(1e-6)  # [B, 3]
            logits.append(pmath.log(p / p.sum(dim=1, keepdim=True)))
            summary.append(torch.stack([median / barrier, spread / barrier], dim=1))  # [B, 2]
        return torch.stack(logits, dim=1), torch.cat(summary, dim=1).clamp(-50, 50), embedding

    def _frozen_cached(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``frozen`` through the fit's cache: a window seen in an earlier epoch (or validation
        pass) is not forecast again. Keyed by the bytes of its returns: the frozen part is a
        function of them alone (no dropout, no batch statistics)."""
        if self.cache is None:
            return self.frozen(r)
        keys = [row.tobytes() for row in r.detach().cpu().numpy()]
        fresh = {}
        todo = [k for k, key in enumerate(keys) if key not in self.cache]
        if todo:
            for k, *outputs in zip(todo, *(p.cpu() for p in self.frozen(r[todo]))):
                fresh[keys[k]] = tuple(outputs)
                if len(self.cache) < self.cache_windows:  # when full, this batch still gets its rows
                    self.cache[keys[k]] = fresh[keys[k]]
        rows = [fresh[key] if key in fresh else self.cache[key] for key in keys]
        return tuple(torch.stack(col).to(r.device) for col in zip(*rows))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i = self.inputs
        r = x[:, :, i.column].float() * i.std + i.mean  # [B, L]: the 1-bar log returns in their own units
        zero, summary, embedding = self._frozen_cached(r)  # [B, H, 3], [B, 2H], [B, md]
        if self.zero_shot:
            prob = torch.softmax(zero, dim=-1)
            return zero, prob[..., 2] - prob[..., 0]
        z = torch.cat([zero.flatten(1), summary, self.norm(embedding)], dim=1)  # [B, 5H + md]
        delta, score = self.head(self.body(z))
        return zero + delta, score


@register("pretrained", "timesfm", kind="network", config=TimesFMConfig, needs_sequences=True, can_use_gpu=True)
class TimesFM(NeuralModel):
    """TimesFM 2.5's forecast of the window's log price against the labels' barrier, zero-shot or with a fine-tuned head."""

    export_blocker: ClassVar[str] = "the official TimesFM decode loops over patches in Python and allocates its caches per call"
    # fp32 on a GPU: the frozen forecaster is the official fp32 decode (no TF32 matmuls either)
    gpu_precision: ClassVar[str] = "fp32"

    def host_syncs_per_forward(self) -> int:
        # at most: the frozen forecaster's cache lives on the host, keyed by each window's bytes
        # (one copy); windows not cached yet bring their three forecast outputs there (three)
        return 4

    def network(self, n_heads: int) -> nn.Module:
        """The forecaster and head for this fit's horizons (before a fit: the first feature read as the return)."""
        horizons = list(getattr(self, "horizons_", []))[:n_heads] or [self.horizon] * n_heads
        inputs = getattr(self, "inputs_", None) or SeriesInputs()
        net = TimesFMNet(load_timesfm(self.config.checkpoint), horizons, inputs, self.config)
        if getattr(self, "_caching", False) and self.config.cache_windows > 0:
            net.cache = {}
        return net

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        self.inputs_ = SeriesInputs.of(train)
        if self.config.finetune == "head":
            self._caching = True  # network() gives the net a cache for this fit's epochs
            try:
                super()._fit(train, val, context)
            finally:
                self._caching = False
            self.net_.cache = None  # predictions need no cache; its memory goes with the fit
            return
        self.shape_ = (train.n_features, train.seq_len)
        self.horizons_ = [self.horizon, *(h for h in train.split.horizons if h != self.horizon)]
        self.net_ = self.network(len(self.horizons_)).eval()
        self.best_iteration_ = 0  # nothing trains

    def _state_meta(self) -> dict:
        return {**super()._state_meta(), "inputs": dataclasses.asdict(self.inputs_)}

    def _load_state(self, directory: Path, state: dict) -> None:
        self.inputs_ = SeriesInputs(**state["inputs"])
        super()._load_state(directory, state)
