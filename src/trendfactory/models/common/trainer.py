"""The one trainer for every torch model.

AdamW with per-parameter-group learning-rate multipliers; linear warm-up then cosine decay
(per step), or reduce-on-plateau (per epoch); gradient clipping; early stopping on validation
log loss with ``patience`` and ``min_delta``; the best ``keep_best`` checkpoints kept on disk
and the best weights restored at the end; optional class weights and an auxiliary
regression of ``score_h``. On CUDA: ``train.precision`` (``auto`` is the network's own
choice: fp32 with TF32 matmuls for most -- plain fp32 was measured faster than bf16 autocast
for 10 of 14 networks at the default sizes, TF32 is yet to be measured; bf16 autocast where a
network says so, fp16 with a grad scaler where bf16 is not supported) and device-resident
batches. The same code path runs on the CPU, in fp32 and, for a given seed, deterministically.

Networks return ``(logits [B, 3], score [B])`` (see ``layers.TrendHead``) and train under the
default :class:`Classification` task; a network with other outputs brings its own :class:`Task`.

Resuming: with a ``checkpoint_dir``, the state after every epoch (weights, optimizer,
scheduler, scaler, RNG, early-stopping bookkeeping, history) goes to ``last.pt``; a later run
with ``resume`` and the same fingerprint (model, params, data content) continues from there.
Every checkpoint is sealed (``last.pt.json``: size, SHA-256, run id); one that is unsealed,
damaged, unreadable or another run's is never loaded -- the run starts fresh with a warning.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from trendfactory.device import keep_freed_memory
from trendfactory.errors import ArtifactError, TrendfactoryError, first_line
from trendfactory.models.common.manifest import check_seal, remove_sealed, sealed_write
from trendfactory.params import TrainConfig

log = logging.getLogger("trendfactory")

LAST = "last.pt"


class Task:
    """What the trainer optimises: the loss of one batch, how many samples a batch holds, and
    the validation metrics (``val/loss`` drives early stopping, or ``val/rank_ic`` with
    ``train.monitor: rank_ic``). Networks with several outputs (the dual tower's heads) bring
    their own task."""

    def loss(self, trainer: "Trainer", net: nn.Module, batch: tuple) -> torch.Tensor:
        raise NotImplementedError

    class_weight: torch.Tensor | None = None  # [H, 3] per head and class, or None
    # the validation samples' dates and returns: with them, validation also reports the daily
    # Rank IC of the scores the model would predict (train.monitor: rank_ic stops on it)
    rank_ic_keys: "RankICKeys | None" = None

    def size(self, batch: tuple) -> int:
        return int(batch[1].shape[0])

    def _weights_on(self, device: torch.device) -> torch.Tensor:
        """The class weights on ``device``, copied there once (not a host-to-device copy per step)."""
        if self.class_weight.device != device:
            self.class_weight = self.class_weight.to(device)
        return self.class_weight

    def validate(self, trainer: "Trainer", net: nn.Module, batches: Iterable) -> dict[str, float]:
        raise NotImplementedError

    def with_rank_ic(self, metrics: dict[str, float], scores: list[torch.Tensor]) -> dict[str, float]:
        """``metrics`` plus ``val/rank_ic`` of the per-batch scores [b, H] (device tensors, one
        copy for the pass) when the task has the validation keys."""
        if self.rank_ic_keys is not None and scores:
            metrics["val/rank_ic"] = self.rank_ic_keys.rank_ic(to_host(scores))
        return metrics


class Classification(Task):
    """Batches (x, y, s), y and s [B, H] (one column per horizon head; [B] for one): the mean
    over heads of each head's cross-entropy on its class (optionally class-weighted per head,
    ``class_weight`` [H, 3] or [3]), plus ``aux_weight`` x MSE of the score heads on ``score_h``.
    Networks return logits [B, H, 3] and scores [B, H] (a [B, 3] / [B] output is one head)."""

    def __init__(self, class_weight: torch.Tensor | None = None, aux_weight: float = 0.0, rank_ic_keys: "RankICKeys | None" = None) -> None:
        self.class_weight = class_weight if class_weight is None or class_weight.dim() == 2 else class_weight[None, :]
        self.aux_weight = aux_weight
        self.rank_ic_keys = rank_ic_keys

    @staticmethod
    def _heads(logits: torch.Tensor, score: torch.Tensor, y: torch.Tensor):
        """Everything as [B, H, ...]: logits [B, H, 3], score [B, H], y [B, H]."""
        if logits.dim() == 2:
            logits, score = logits[:, None], score[:, None]
        return logits, score, (y[:, None] if y.dim() == 1 else y)

    def _nll(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[H] per-head (weighted) mean cross-entropy; every head's CE in one call."""
        nll = nn.functional.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # [B, H]
        if self.class_weight is None:
            return nll.mean(dim=0)
        w = self._weights_on(y.device).gather(1, y.t()).t()  # [B, H]: weight[head, class of sample]
        return (w * nll).sum(dim=0) / w.sum(dim=0)

    def loss(self, trainer: "Trainer", net: nn.Module, batch: tuple) -> torch.Tensor:
        x, y, s = batch[:3]
        logits, score = trainer.forward(net, x)
        logits, score, y = self._heads(logits, score, y)
        loss = self._nll(logits, y).mean()
        if self.aux_weight > 0:
            loss = loss + self.aux_weight * nn.functional.mse_loss(score.float(), s.view_as(score))
        return loss

    @torch.no_grad()
    def validate(self, trainer: "Trainer", net: nn.Module, batches: Iterable) -> dict[str, float]:
        """Unweighted log loss and macro F1 (the metrics the comparison reports), averaged over
        heads. Everything stays on the device until the pass is over: one copy to the host then,
        none per batch (a per-batch copy would make the host wait for every forward)."""
        total, n, ys, ps, scores = None, 0, [], [], []
        for x, y, *_ in batches:
            logits, score = trainer.forward(net, x)
            logits, score, y = self._heads(logits.float(), score, y)
            if self.rank_ic_keys is not None:  # the score the model would predict: p_up - p_down, or its score head
                prob = torch.softmax(logits, dim=-1)
                scores.append(score.float() if self.aux_weight > 0 else prob[..., 2] - prob[..., 0])
            nll = nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").sum(dim=0)  # [H]
            total = nll if total is None else total + nll
            n += y.shape[0]
            ys.append(y)
            ps.append(logits.argmax(-1))
        if n == 0:
            return {"val/loss": float("nan"), "val/macro_f1": float("nan")}
        y_all, p_all = to_host(ys), to_host(ps)  # [n, H]
        heads = y_all.shape[1]
        out = {"val/loss": float(total.sum()) / (n * heads), "val/macro_f1": float(np.mean([macro_f1(y_all[:, k], p_all[:, k]) for k in range(heads)]))}
        return self.with_rank_ic(out, scores)


def to_host(parts: list[torch.Tensor]) -> np.ndarray:
    """Per-batch device tensors [b, ...] as one host array [n, ...]: one copy for a whole pass."""
    return torch.cat(parts).cpu().numpy()


@dataclass
class RankICKeys:
    """What the validation daily Rank IC needs beside the scores, in the validation batches'
    (unshuffled) order: each sample's date and its realised forward return per head."""

    dates: np.ndarray  # [n] datetime64 or int64
    returns: np.ndarray  # [n, H] float

    @classmethod
    def of(cls, split, ends: np.ndarray, horizons: list[int]) -> "RankICKeys":
        """The keys of a window store split's samples at ``ends`` (the unshuffled validation
        order), one return column per horizon head."""
        return cls(np.asarray(split.frame(ends)["datetime"]), np.stack([np.asarray(split.returns(h)[ends]) for h in horizons], axis=1))

    def rank_ic(self, scores: np.ndarray) -> float:
        """Mean over heads of the mean over dates of the cross-sectional Spearman correlation of
        ``scores`` [n, H] with the returns (the comparison's Rank IC); NaN when undefined."""
        from trendfactory.evaluation.ic import daily_ic  # the one definition of the metric

        values = []
        for k in range(scores.shape[1]):
            ic = daily_ic(pd.DataFrame({"datetime": self.dates, "score": scores[:, k], "ret": self.returns[:, k]}), "spearman")
            values.append(float(ic.mean()) if len(ic) else float("nan"))
        return float(np.mean(values))


@dataclass
class _Optimization:
    """What one fit steps: the optimizer, its schedules, the grad scaler, the clipped parameters."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    scaler: torch.amp.GradScaler
    clipped: list
    clip_in_step: bool


@dataclass
class TrainResult:
    best_epoch: int  # 0-based epoch whose weights were restored
    best_monitored: float  # that epoch's train.monitor value: val loss, or the negated val Rank IC
    epochs: int  # epochs run (including resumed ones)
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    samples_per_second: float = 0.0  # training throughput (forward + backward + step)

    def curves(self) -> dict[str, list[float]]:
        """Every epoch's record that the train stage logs to DVCLive (``val/rank_ic`` ->
        ``val_rank_ic``): losses, val macro F1 and Rank IC, the learning rate. Not the samples/s,
        which differ from run to run and would make the stage's output differ too."""
        return {k.replace("/", "_"): v for k, v in self.history.items() if k != "samples_per_second"}

    def at_best(self, key: str) -> float:
        """``history[key]`` at the best epoch (NaN where it was not recorded)."""
        values = self.history.get(key, [])
        return values[self.best_epoch] if 0 <= self.best_epoch < len(values) else math.nan


@dataclass
class Precision:
    """How the forward pass runs: autocast dtype (None = fp32), whether to scale grads, and
    whether fp32 matmuls and convolutions may use TF32 tensor cores (CUDA only)."""

    autocast: torch.dtype | None
    scale: bool
    tf32: bool = False

    @classmethod
    def resolve(cls, setting: str, device: torch.device, auto: str = "tf32") -> "Precision":
        """``train.precision`` on ``device``; ``auto`` is the network's own choice on CUDA
        (``TorchModel.gpu_precision``) and fp32 on the CPU."""
        if device.type != "cuda":
            if setting not in ("auto", "fp32"):
                log.info("train.precision=%s applies on CUDA only; training in fp32 on %s", setting, device)
            return cls(None, False)
        if setting == "auto":
            setting = auto
        if setting in ("fp32", "tf32"):
            return cls(None, False, tf32=setting == "tf32")
        if setting == "bf16" and not torch.cuda.is_bf16_supported():
            setting = "fp16"  # GPUs without bf16: fp16 with a grad scaler
        return cls(torch.bfloat16, False) if setting == "bf16" else cls(torch.float16, True)

    def apply(self) -> None:
        """Set the process' TF32 switches for this run (CUDA only: both are process-wide)."""
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32


def _adamw(groups: list[dict], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel (one pass over every parameter: the step costs 0.27 ms for the
    dual tower on the CPU, against 0.73 ms multi-tensor and more per-tensor); multi-tensor where
    this torch has no fused kernel for the device (fused CPU AdamW arrived in torch 2.4)."""
    try:
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, foreach=True)


def fingerprint(*parts) -> str:
    """A short hash of what a run depends on (resuming needs the same one)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_epochs``, then (cosine) a half cosine down to 0 at
    ``max_epochs``, or (plateau) flat -- the plateau scheduler scales on top of it."""
    warm = max(int(round(cfg.warmup_epochs * steps_per_epoch)), 0)
    total = max(cfg.max_epochs * steps_per_epoch, 1)

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.scheduler != "cosine":
            return 1.0
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _clip_divisor(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """What dividing the gradients by clips them to a global L2 norm of ``max_norm``:
    max(1, (norm + 1e-6) / max_norm), the reciprocal of ``clip_grad_norm_``'s coefficient."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.ones((), device=params[0].device if params else "cpu")
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # one pass, no grouping
    return ((total + 1e-6) / max_norm).clamp_(min=1.0)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Macro F1 over the classes 0/1/2 (absent classes count 0), cheap enough per epoch."""
    f1 = []
    for c in range(3):
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


class Trainer:
    """Fits one network (see module docstring)."""

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        seed: int,
        device: torch.device,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        checkpoint_dir: Path | None = None,
        run_id: str = "",
        progress: bool = True,
        name: str = "",
        auto_precision: str = "tf32",
    ) -> None:
        self.cfg = cfg
        self.seed = seed
        self.device = device
        self.precision = Precision.resolve(cfg.precision, device, auto_precision)
        if device.type == "cuda":
            self.precision.apply()
        if device.type == "cpu":
            keep_freed_memory()  # no page faults for every activation of every step
        self.on_epoch = on_epoch
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.run_id = run_id
        self.progress = progress
        self.name = name

    # ---- one batch ---------------------------------------------------------------------------
    def forward(self, net: nn.Module, x):
        """``net(x)`` in the run's precision (fp32: no autocast context at all, it costs per batch)."""
        if self.precision.autocast is None:
            return net(x)
        with torch.autocast(self.device.type, dtype=self.precision.autocast):
            return net(x)

    def evaluate(self, net: nn.Module, batches: Iterable, task: Task | None = None) -> dict[str, float]:
        """Validation metrics of ``net`` (eval mode) under ``task`` (default: classification)."""
        net.eval()
        return (task or Classification()).validate(self, net, batches)

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, net: nn.Module, train, val, param_groups: list[dict] | None = None, task: Task | None = None) -> TrainResult:
        """Train ``net`` on ``train`` batches (a re-iterable with ``len`` that reshuffles per epoch
        through ``set_epoch``), early-stopping on ``val``'s ``val/loss``. ``param_groups``:
        [{"params": [...], "lr_mult": m}] (default: one group, multiplier 1). ``task``: the loss
        and validation (default: :class:`Classification` of (x, y, s) batches)."""
        cfg = self.cfg
        task = task or Classification(aux_weight=cfg.aux_weight)
        torch.manual_seed(self.seed)
        net.to(self.device)
        o = self._optimization(net, param_groups, max(len(train), 1))
        st = {"epoch": 0, "best": math.inf, "best_epoch": -1, "bad": 0, "history": {}, "best_ckpts": []}
        best_state = None
        if self.checkpoint_dir and cfg.resume:
            best_state = self._resume(net, o.opt, o.sched, o.plateau, o.scaler, st)
        t_train, n_train = 0.0, 0
        t_start = time.perf_counter()
        # a resumed run whose last epoch had already stopped it early trains no further epoch
        # (an uninterrupted run broke out of this loop right after saving that last.pt)
        last_epoch = st["epoch"] if st["bad"] >= cfg.patience else cfg.max_epochs
        for epoch in range(st["epoch"], last_epoch):
            t0 = time.perf_counter()
            running, count = self._train_epoch(net, train, epoch, task, o)
            t_train += time.perf_counter() - t0
            n_train += count
            val_metrics = self.evaluate(net, val, task)
            self._check_finite(epoch, running / max(count, 1), val_metrics["val/loss"], o.scaler.is_enabled())
            monitored = self._monitored(val_metrics)
            if o.plateau is not None:
                o.plateau.step(monitored)
            metrics = {
                "train/loss": running / max(count, 1),
                **val_metrics,
                "lr": o.opt.param_groups[0]["lr"],
                "samples_per_second": count / max(time.perf_counter() - t0, 1e-9),
            }
            best_state = self._end_epoch(net, epoch, metrics, monitored, st, best_state)
            self._save_last(net, o.opt, o.sched, o.plateau, o.scaler, st)
            if st["bad"] >= cfg.patience:
                log.info("%s: early stop after epoch %d (no val improvement > %g for %d epochs)", self.name, epoch + 1, cfg.min_delta, cfg.patience)
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        return TrainResult(
            best_epoch=st["best_epoch"],
            best_monitored=st["best"],
            epochs=st["epoch"],
            history=st["history"],
            seconds=time.perf_counter() - t_start,
            samples_per_second=n_train / t_train if t_train > 0 else 0.0,
        )

    def _optimization(self, net: nn.Module, param_groups: list[dict] | None, steps: int) -> _Optimization:
        """AdamW over the parameter groups, the warm-up + schedule of ``train.scheduler``, the
        grad scaler of the precision, and how gradients are clipped."""
        cfg = self.cfg
        groups = param_groups or [{"params": list(net.parameters()), "lr_mult": 1.0}]
        opt = _adamw([{"params": g["params"], "lr": cfg.lr * g.get("lr_mult", 1.0)} for g in groups], cfg.lr, cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps))
        plateau = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=max(cfg.patience // 2, 1), threshold=cfg.min_delta, threshold_mode="abs")
            if cfg.scheduler == "plateau"
            else None
        )
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.scale)
        # the fused AdamW kernel divides every gradient by ``opt.grad_scale`` as it reads it (the
        # hook GradScaler uses): clipping there saves a separate pass over the gradients -- 70 us
        # a step, 2 % of the MLP's. Not with an active grad scaler, which owns that attribute.
        clip_in_step = bool(opt.defaults.get("fused")) and not scaler.is_enabled()
        return _Optimization(opt, sched, plateau, scaler, [p for p in net.parameters() if p.requires_grad], clip_in_step)

    def _train_epoch(self, net: nn.Module, train, epoch: int, task: Task, o: _Optimization) -> tuple[float, int]:
        """One pass over ``train``: (summed loss weighted by batch size, samples seen)."""
        cfg = self.cfg
        if hasattr(train, "set_epoch"):
            train.set_epoch(epoch)
        net.train()
        losses, sizes = [], []  # summed once an epoch: no per-batch op, no sync
        for batch in self._bar(train, epoch):
            loss = task.loss(self, net, batch)
            o.opt.zero_grad(set_to_none=True)
            o.scaler.scale(loss).backward()
            if cfg.max_grad_norm > 0:
                if o.clip_in_step:
                    o.opt.grad_scale = _clip_divisor(o.clipped, cfg.max_grad_norm)
                else:
                    o.scaler.unscale_(o.opt)
                    nn.utils.clip_grad_norm_(o.clipped, cfg.max_grad_norm, foreach=True)
            o.scaler.step(o.opt)
            o.scaler.update()
            o.sched.step()
            losses.append(loss.detach())
            sizes.append(task.size(batch))
        count = sum(sizes)
        running = float(torch.stack(losses) @ torch.tensor(sizes, dtype=torch.float32, device=self.device)) if losses else 0.0
        return running, count

    def _monitored(self, val_metrics: dict) -> float:
        """What early stopping and the plateau schedule minimise: val loss, or the negated val Rank IC."""
        if self.cfg.monitor != "rank_ic":
            return val_metrics["val/loss"]
        if "val/rank_ic" not in val_metrics:
            raise TrendfactoryError(f"{self.name}: train.monitor is rank_ic but this model's validation has no Rank IC; use train.monitor: loss")
        return -val_metrics["val/rank_ic"] if np.isfinite(val_metrics["val/rank_ic"]) else math.inf

    def _end_epoch(self, net: nn.Module, epoch: int, metrics: dict, monitored: float, st: dict, best_state: dict | None) -> dict | None:
        """Record the epoch (history, the on_epoch hook, the log line), keep the weights when the
        monitored value improved by more than ``min_delta``; returns the best weights so far."""
        for k, v in metrics.items():
            st["history"].setdefault(k, []).append(float(v))
        if self.on_epoch:
            self.on_epoch(metrics)
        improved = monitored < st["best"] - self.cfg.min_delta
        if improved:
            st.update(best=monitored, best_epoch=epoch, bad=0)
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            self._keep_best(epoch, monitored, best_state, st)
        else:
            st["bad"] += 1
        rank_ic = f", val Rank IC {metrics['val/rank_ic']:+.4f}" if "val/rank_ic" in metrics else ""
        log.info(
            "%s epoch %d/%d: train loss %.5f, val loss %.5f, val macro F1 %.4f%s, lr %.2e, %.0f samples/s%s",
            self.name,
            epoch + 1,
            self.cfg.max_epochs,
            metrics["train/loss"],
            metrics["val/loss"],
            metrics.get("val/macro_f1", float("nan")),
            rank_ic,
            metrics["lr"],
            metrics["samples_per_second"],
            " *" if improved else "",
        )
        st["epoch"] = epoch + 1
        return best_state

    def _check_finite(self, epoch: int, train_loss: float, val_loss: float, scaled: bool) -> None:
        """Stop a diverged fit: NaN weights would be saved, recorded by DVC and fail later in
        evaluate. (With fp16 loss scaling a batch's loss may be inf while the scaler skips that
        step, so only the validation loss counts there.)"""
        bad = [(what, v) for what, v in (("train", train_loss), ("validation", val_loss)) if not math.isfinite(v) and (what == "validation" or not scaled)]
        if bad:
            what, v = bad[0]
            raise TrendfactoryError(
                f"{self.name}: the {what} loss is {v} after epoch {epoch + 1} (the weights diverged); "
                f"lower train.lr (now {self.cfg.lr:g}) or train.max_grad_norm (now {self.cfg.max_grad_norm:g}; 0 turns clipping off)"
            )

    def _bar(self, batches, epoch: int):
        if not self.progress:
            return batches
        from tqdm.auto import tqdm

        return tqdm(batches, total=len(batches), desc=f"{self.name} epoch {epoch + 1}", leave=False, mininterval=2.0, disable=None)

    # ---- checkpoints -------------------------------------------------------------------------
    def _keep_best(self, epoch: int, val_loss: float, state: dict, st: dict) -> None:
        """Write this best-so-far checkpoint (sealed) and drop all but the best ``keep_best``."""
        if not self.checkpoint_dir:
            return
        path = self.checkpoint_dir / f"best-epoch{epoch + 1:03d}.pt"
        with sealed_write(path, self.run_id) as tmp:
            torch.save(state, tmp)
        st["best_ckpts"].append([val_loss, path.name])
        st["best_ckpts"].sort()
        for _, old in st["best_ckpts"][self.cfg.keep_best :]:
            remove_sealed(self.checkpoint_dir / old)
        st["best_ckpts"] = st["best_ckpts"][: self.cfg.keep_best]

    def _save_last(self, net, opt, sched, plateau, scaler, st: dict) -> None:
        if not self.checkpoint_dir:
            return
        blob = {
            "run_id": self.run_id,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "plateau": plateau.state_dict() if plateau is not None else None,
            "scaler": scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "state": json.dumps(st),
        }
        with sealed_write(self.checkpoint_dir / LAST, self.run_id) as tmp:
            torch.save(blob, tmp)

    def _resume(self, net, opt, sched, plateau, scaler, st: dict) -> dict | None:
        """Continue from ``last.pt`` when it is this run's and intact; returns the best weights
        so far. Anything unusable -- no seal, a damaged or unreadable file, another run's, a
        missing or damaged best checkpoint -- means starting fresh with one warning: a resume
        must give what an uninterrupted run gives, and without the best weights it cannot."""
        path = self.checkpoint_dir / LAST
        if not path.is_file():
            return None
        try:
            blob, state, best = self._read_resumable(net, path)
        except ArtifactError as exc:
            log.warning("%s: not resuming: %s; starting fresh", self.name, exc)
            return None
        fresh = _snapshot(net, opt, sched, plateau, scaler)
        try:
            _restore(blob, net, opt, sched, plateau, scaler)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            # a sealed checkpoint of this run id that does not fit (e.g. the code changed the
            # network): undo whatever part was applied, so the fresh start is really fresh
            _restore(fresh, net, opt, sched, plateau, scaler)
            log.warning("%s: not resuming: %s does not fit this network or optimizer (%s: %s); starting fresh", self.name, path, type(exc).__name__, first_line(exc))
            return None
        st.update(state)
        log.info("%s: resuming after epoch %d from %s", self.name, st["epoch"], path)
        return best

    def _read_resumable(self, net: nn.Module, path: Path) -> tuple[dict, dict, dict | None]:
        """(last.pt's blob, its bookkeeping, the best weights so far), all verified, or
        ArtifactError saying which file is unusable and why."""
        blob = self._load_sealed(path)
        if not isinstance(blob, dict) or blob.get("run_id") != self.run_id or not _CHECKPOINT_KEYS <= set(blob):
            raise ArtifactError(f"{path}: not a checkpoint of this run")
        try:
            state = json.loads(blob["state"])
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{path}: unreadable bookkeeping ({type(exc).__name__})") from None
        if not isinstance(state, dict) or not _STATE_KEYS <= set(state):
            raise ArtifactError(f"{path}: unreadable bookkeeping")
        _check_weights_fit(net, blob["model"], path)
        best = None
        if state["best_epoch"] >= 0:  # an epoch improved: its weights are what fit() must end with
            if not state["best_ckpts"]:
                raise ArtifactError(f"{path}: records best epoch {state['best_epoch'] + 1} but no best checkpoint")
            best_path = self.checkpoint_dir / min(state["best_ckpts"])[1]
            best = self._load_sealed(best_path)
            _check_weights_fit(net, best, best_path)
        return blob, state, best

    def _load_sealed(self, path: Path):
        """``torch.load`` of a checkpoint whose seal matches this run (ArtifactError otherwise)."""
        check_seal(path, self.run_id)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 -- whatever torch raises, the answer is the same: start fresh
            raise ArtifactError(f"{path}: unreadable ({type(exc).__name__})") from exc


_CHECKPOINT_KEYS = {"run_id", "model", "optimizer", "scheduler", "plateau", "scaler", "torch_rng", "state"}
_STATE_KEYS = {"epoch", "best", "best_epoch", "bad", "history", "best_ckpts"}


def _check_weights_fit(net: nn.Module, weights: object, path: Path) -> None:
    """ArtifactError unless ``weights`` is a state dict with exactly ``net``'s names and shapes
    (checked before loading: a failing ``load_state_dict`` may already have copied some)."""
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ArtifactError(f"{path}: not a state dict")
    have = {k: tuple(v.shape) for k, v in weights.items()}
    if have != want:
        raise ArtifactError(f"{path}: its weights do not fit this network (other layer names or shapes)")


def _snapshot(net, opt, sched, plateau, scaler) -> dict:
    """The trainer's starting state in last.pt's layout (copies), to undo a partial resume."""
    return {
        "model": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "optimizer": copy.deepcopy(opt.state_dict()),
        "scheduler": copy.deepcopy(sched.state_dict()),
        "plateau": copy.deepcopy(plateau.state_dict()) if plateau is not None else None,
        "scaler": copy.deepcopy(scaler.state_dict()),
        "torch_rng": torch.get_rng_state(),
    }


def _restore(blob: dict, net, opt, sched, plateau, scaler) -> None:
    """Load a last.pt blob (or a :func:`_snapshot`) into the trainer's objects."""
    net.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    sched.load_state_dict(blob["scheduler"])
    if plateau is not None and blob["plateau"] is not None:
        plateau.load_state_dict(blob["plateau"])
    scaler.load_state_dict(blob["scaler"])
    torch.set_rng_state(blob["torch_rng"])
