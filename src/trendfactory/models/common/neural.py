"""What every torch model shares: building the network, feeding it batches, the shared
trainer, prediction and safe saving (a ``state_dict`` loaded with ``weights_only=True``).

:class:`TorchModel` holds what every model trained by the shared trainer has (the ``train``
section, one fit for every horizon of the store); two contracts build on it: :class:`NeuralModel`
here (kind ``network``) and :class:`~trendfactory.models.common.joint.JointModel` (kind ``joint``).

A neural model is a :class:`NeuralModel` subclass in its own file that implements ``build``
(its architecture, ending in a :class:`~trendfactory.models.common.layers.TrendHead` named
``head``) and says whether it reads windows or tabular rows. How it trains is the shared
``train`` params section (:class:`~trendfactory.params.TrainConfig`).

Every horizon trains in one network: the head is widened to one output per horizon of the
window store, the loss is the mean of the heads' cross-entropies, and a horizon's predictions
come from its own head. One fit serves every horizon (``joint``), so a network is trained once
per fold, not once per fold and horizon.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trendfactory.device import resolve_device
from trendfactory.errors import TrendfactoryError
from trendfactory.import_closure import source_hash
from trendfactory.models.base import FitContext, Predictions, TrendModel
from trendfactory.models.common.layers import TrendHead
from trendfactory.models.common.trainer import Classification, Precision, RankICKeys, Trainer, fingerprint, to_host
from trendfactory.models.data import Samples, class_weights
from trendfactory.models.search import Float
from trendfactory.params import TrainConfig, config_to_dict
from trendfactory.windows.torch_data import BatchGatherer

log = logging.getLogger("trendfactory")

WEIGHTS_FILE = "weights.pt"


class HeadScorer(nn.Module):
    """A trained network reduced to one horizon's scoring: x -> (probabilities [B, 3], score [B])."""

    def __init__(self, net: nn.Module, head: int, use_score_head: bool) -> None:
        super().__init__()
        self.net, self.head, self.use_score_head = net, head, use_score_head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, score = self.net(x)  # [B, H, 3], [B, H]
        proba = torch.softmax(logits[:, self.head].float(), dim=1)  # [B, 3]
        # without an auxiliary score loss the score head is untrained: predict uses p_up - p_down
        return proba, score[:, self.head].float() if self.use_score_head else proba[:, 2] - proba[:, 0]


# The shared trainer's part of every network's search space (run.tune): its step size and decay.
TRAINER_SPACE = {"train.lr": Float(1e-4, 3e-3, log=True), "train.weight_decay": Float(1e-4, 0.1, log=True)}


class TorchModel(TrendModel):
    """A model trained by :class:`~trendfactory.models.common.trainer.Trainer` (it reads the
    ``train`` section), whose one fit per fold serves every horizon of the window store."""

    uses_trainer: ClassVar[bool] = True
    stochastic: ClassVar[bool] = True
    joint: ClassVar[bool] = True
    #: what ``train.precision: auto`` trains in on a GPU: "tf32" (fp32 with TF32 matmuls: bf16
    #: autocast was measured slower than plain fp32 for 10 of 14 networks at the default sizes on
    #: an H200), or "bf16" / "fp32" where a network says why
    gpu_precision: ClassVar[str] = "tf32"

    def __init__(self, config=None, *, horizon: int = 5, seed: int = 0, train: TrainConfig | None = None) -> None:
        super().__init__(config, horizon=horizon, seed=seed)
        self.train_config = train if train is not None else TrainConfig()

    # ---- prediction on the device ---------------------------------------------------------------
    def scoring_device(self) -> torch.device:
        """Where ``predict`` runs the network: a GPU when torch sees one and ``train.device`` is
        not ``cpu``, else the CPU. Never an error: a model fitted on a GPU (``device: cuda``)
        still predicts on a machine without one. ``predicting_on`` overrides it for a block."""
        forced = getattr(self, "_predict_device", None)
        if forced is not None:
            return forced
        return torch.device("cuda") if self.train_config.device != "cpu" and torch.cuda.is_available() else torch.device("cpu")

    @contextlib.contextmanager
    def predicting_on(self, device: str | torch.device) -> Iterator["TorchModel"]:
        """``predict`` runs on ``device`` inside the block (export compares its CPU file with
        the network on the CPU: a GPU's rounding is not the file's)."""
        old, self._predict_device = getattr(self, "_predict_device", None), torch.device(device)
        try:
            yield self
        finally:
            self._predict_device = old

    @torch.no_grad()
    def _score(self, net: nn.Module, inputs: Iterable[np.ndarray], head: int, use_score_head: bool) -> Predictions:
        """Predictions of ``net``'s head ``head`` over input chunks (windows [b, L, F] or rows
        [b, F']), run on :meth:`scoring_device`. The fitted network stays on the CPU (what is
        saved); a GPU gets a copy. Outputs stay on the device until the last chunk: one copy
        back to the host, none per chunk."""
        device = self.scoring_device()
        if device.type != "cpu":
            net = copy.deepcopy(net).to(device)
            # fp32 predictions with the TF32 switches the fit had (whatever process scores: the
            # train stage after its fits, evaluate, `trendfactory predict`)
            Precision.resolve(self.train_config.precision, device, self.gpu_precision).apply()
        net.eval()
        probs, scores = [], []
        for chunk in inputs:
            logits, score, *_ = net(torch.from_numpy(chunk).to(device, non_blocking=True))  # [b, H, 3], [b, H]
            probs.append(torch.softmax(logits[:, head].float(), dim=1))  # [b, 3]
            scores.append(score[:, head].float())  # [b]
        proba = to_host(probs)
        # the score head is trained only with an auxiliary score loss; otherwise p_up - p_down
        return Predictions.from_proba(proba, to_host(scores) if use_score_head else None)

    def host_syncs_per_forward(self) -> int:
        """How many times one forward pass makes the host wait for the device (reads a device
        value: ``.item()``, ``.tolist()``, a copy to the host, ``nonzero``). Networks do none --
        tests/models/test_host_sync.py holds every registered one to what it declares here; a
        network whose algorithm needs a value on the host overrides this and says why."""
        return 0

    @staticmethod
    def common_ends(samples: Samples, horizons: list[int]) -> np.ndarray:
        """The samples' window ends labelled (and with a return) at every horizon."""
        ends = samples.ends
        for h in horizons:
            ends = np.intersect1d(ends, samples.split.index(h), assume_unique=True)
        return ends


class NeuralModel(TorchModel):
    """A network built by its model file, one head per horizon (kind ``network``)."""

    #: "window": x is [B, seq_len, F]; "tabular": x is [B, F*(1+len(lags))] (the last row + lags)
    input_kind: ClassVar[str] = "window"

    # ---- what a model file provides ----------------------------------------------------------
    def build(self, n_features: int, seq_len: int) -> nn.Module:
        """The network for inputs of ``n_features`` features (and ``seq_len`` bars)."""
        raise NotImplementedError

    def param_groups(self, net: nn.Module) -> list[dict] | None:
        """Parameter groups with learning-rate multipliers ([{"params", "lr_mult"}]); None = one group."""
        return None

    # ---- inputs ------------------------------------------------------------------------------
    @property
    def lags(self) -> tuple[int, ...] | None:
        return tuple(self.config.lags) if self.input_kind == "tabular" else None

    def _batches(self, samples: Samples, ends: np.ndarray, train: bool, device: torch.device) -> BatchGatherer:
        cfg = self.train_config
        return BatchGatherer(
            samples.split,
            self.horizons_,
            cfg.batch_size if train else cfg.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            device=device,
            ends=ends,
            lags=self.lags,
            with_scores=True,
            samples_per_epoch=cfg.samples_per_epoch if train else None,
        )

    def network(self, n_heads: int) -> nn.Module:
        """``build``'s network with its head widened to ``n_heads`` horizons."""
        net = self.build(*self.shape_)
        head = getattr(net, "head", None)
        if not isinstance(head, TrendHead):
            raise TypeError(f"{self.name}: build() must return a network whose output layer is a TrendHead named `head`")
        net.head = head.with_heads(n_heads)
        return net

    def _class_weight(self, split, ends: np.ndarray) -> torch.Tensor | None:
        """[H, 3] per-head class weights for ``train.class_weight: balanced`` (None for none)."""
        rows = []
        for h in self.horizons_:
            w = class_weights(np.asarray(split.labels(h)[ends]).astype(np.int64) + 1, self.train_config.class_weight)
            if w is None:
                return None
            y = np.asarray(split.labels(h)[ends]).astype(np.int64) + 1
            rows.append([float(w[y == c][0]) if np.any(y == c) else 0.0 for c in range(3)])
        return torch.tensor(rows, dtype=torch.float32)

    # ---- hooks -------------------------------------------------------------------------------
    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        cfg = self.train_config
        device = resolve_device(cfg.device, "train.device")
        torch.manual_seed(self.seed)
        self.shape_ = (train.n_features, train.seq_len)
        # every horizon of the store, this model's own first: one head each
        self.horizons_ = [self.horizon, *(h for h in train.split.horizons if h != self.horizon)]
        net = self.network(len(self.horizons_))
        tr_ends, va_ends = self.common_ends(train, self.horizons_), self.common_ends(val, self.horizons_)
        cw = self._class_weight(train.split, tr_ends)
        run_id = resume_key(type(self), self.horizons_, self.seed, self.config, cfg, (train, tr_ends), (val, va_ends))
        trainer = Trainer(
            cfg,
            seed=self.seed,
            device=device,
            on_epoch=context.on_epoch,
            checkpoint_dir=context.checkpoint_dir,
            run_id=run_id,
            name=f"{self.name} {'+'.join(f'h{h}' for h in self.horizons_)}",
            auto_precision=self.gpu_precision,
        )
        # validation Rank IC every epoch (logged; the early-stopping criterion with train.monitor: rank_ic)
        task = Classification(class_weight=cw, aux_weight=cfg.aux_weight, rank_ic_keys=RankICKeys.of(val.split, va_ends, self.horizons_))
        result = trainer.fit(net, self._batches(train, tr_ends, True, device), self._batches(val, va_ends, False, device), self.param_groups(net), task)
        self.net_ = net.to("cpu").eval()
        self.best_iteration_ = result.best_epoch
        self._log_history(**result.curves())
        log.info(
            "%s %s: best epoch %d of %d (by val %s), val log loss %.5f, val Rank IC %+.4f, %.0f train samples/s",
            self.name,
            "+".join(f"h{h}" for h in self.horizons_),
            result.best_epoch + 1,
            result.epochs,
            "Rank IC" if cfg.monitor == "rank_ic" else "log loss",
            result.at_best("val/loss"),
            result.at_best("val/rank_ic"),
            result.samples_per_second,
        )

    def _head_of(self, horizon: int) -> int:
        if horizon not in self.horizons_:
            raise TrendfactoryError(f"{self.name}: no head for horizon {horizon}; trained for {self.horizons_}")
        return self.horizons_.index(horizon)

    def _predict(self, samples: Samples) -> Predictions:
        k = self._head_of(samples.horizon)
        n, step = len(samples), self.train_config.eval_batch_size
        # inputs through Samples (so permuted samples work too): tabular rows all at once
        # ([n, F*(1+lags)] is small), windows a batch at a time
        if self.input_kind == "tabular":
            table = samples.tabular(self.lags)
            chunks = (table[lo : lo + step] for lo in range(0, n, step))
        else:
            chunks = (samples.windows(slice(lo, min(lo + step, n))) for lo in range(0, n, step))
        return self._score(self.net_, chunks, k, self.train_config.aux_weight > 0)

    # ---- export ------------------------------------------------------------------------------
    def scoring_module(self, horizon: int) -> nn.Module:
        """The fitted network as it scores ``horizon``: inputs -> (probabilities [B, 3], score
        [B]), the function ``predict`` computes; what `trendfactory export` writes."""
        self._check_fitted("export")
        return HeadScorer(self.net_.eval(), self._head_of(horizon), self.train_config.aux_weight > 0)

    def scoring_inputs(self, samples: Samples, part: slice) -> np.ndarray:
        """The network's inputs for ``samples[part]``: windows [n, L, F] or tabular rows [n, F']."""
        return samples.tabular(self.lags)[part] if self.input_kind == "tabular" else samples.windows(part)

    def _state_meta(self) -> dict:
        # no throughput or timings here: DVC hashes this file, and they change on every run
        return {"shape": list(self.shape_), "horizons": list(self.horizons_), "train": config_to_dict(self.train_config)}

    def _save_state(self, directory: Path) -> None:
        torch.save(self.net_.state_dict(), directory / WEIGHTS_FILE)

    def _load_state(self, directory: Path, state: dict) -> None:
        from trendfactory.params import build_config  # the params loader's own validation

        train = {k: v for k, v in state["train"].items() if k != "workers"}  # a key of older saves (where fits ran)
        self.train_config = build_config(TrainConfig, train, "train")
        self.shape_ = tuple(state["shape"])
        self.horizons_ = [int(h) for h in state.get("horizons", [self.horizon])]
        net = self.network(len(self.horizons_))
        net.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        self.net_ = net.eval()


def code_hash(model: type) -> str:
    """SHA-256 of the project code a fit of ``model`` can run: the files of the modules that
    define its class and its bases, and everything they import (a tuned variant's is its base
    model's)."""
    modules = sorted({c.__module__ for c in model.__mro__ if c.__module__.startswith("trendfactory.")})
    return source_hash(*modules)


def _train_key(cfg: TrainConfig) -> dict:
    """The train settings that change the result (not where it runs, in how many processes,
    or whether it resumes)."""
    d = dataclasses.asdict(cfg)
    for k in ("device", "resume", "eval_batch_size"):
        d.pop(k)
    return d


def resume_key(model: type, horizons: list[int], seed: int, config, train_config: TrainConfig, train: tuple[Samples, np.ndarray], val: tuple[Samples, np.ndarray]) -> str:
    """The run id a checkpoint must carry to be resumed: everything one network's fit reads --
    the model (its name and the project code its class can run: an edit between the interrupted
    run and the rerun starts afresh), its heads' horizons, the seed, the model and train params,
    and the content of the train and validation data at the window ends it trains and validates
    on (features, labels, scores, returns, dates; :meth:`Samples.content_hash`). Row counts alone
    are not enough: relabelling keeps them and changes the targets."""
    (tr, tr_ends), (va, va_ends) = train, val
    return fingerprint(
        model.name,
        code_hash(model),
        [int(h) for h in horizons],
        int(seed),
        config_to_dict(config),
        _train_key(train_config),
        list(tr.feature_names),
        tr.content_hash(horizons, tr_ends),
        va.content_hash(horizons, va_ends),
    )
