"""Hyperparameter studies (Optuna) for the models in run.tune, one per model x horizon.

A trial samples the model's declared ``search_space`` (models.search), then for each
walk-forward fold in order fits the model on the fold's train block (early stopping on its
validation block, as the train stage does) and predicts the validation block. The objective is
the **pooled validation Rank IC**: the mean daily Spearman IC over every fold's validation
dates. Test blocks are never read. After each fold the running pooled value is reported, so a
median pruner can stop a trial whose first folds already trail the earlier trials.

Trials run in parallel as Ray tasks (trendfactory.parallel): each task is a worker that loads the
study from its storage and runs its share of the trials still to run, so a study ends with
exactly ``tune.trials`` trials (a failed trial counts: its params were refused). The default
storage is a journal file per study (.tuning/<m>-h<h>.journal, safe for several processes,
resumable) in the project's own folder, also when DVC runs the stage in a temporary workspace
(``dvc exp run --temp``, ``dvc queue``: .dvc/tmp/exps/...), so queued and temporary experiments
share and resume studies with the workspace; ``tune.storage`` takes any Optuna RDB URL for
workers on many machines. The study's name carries a fingerprint of what its trials depend on
(data, params, space), so a changed input starts a new study instead of mixing trials.

A trial whose process was killed (SIGTERM, a lost machine) would stay RUNNING for ever. Each
trial records the process that runs it; before a study continues, a RUNNING trial whose process
is gone (journal: same machine, by process id and start time; RDB storage: Optuna's heartbeat,
``HEARTBEAT_S``) is marked failed and its params queued again, so it is retried first and does
not count as one of the ``tune.trials``.

With one worker the study is deterministic (seeded sampler, seeded fits); with several, which
trial sees which history depends on timing, which is why the result is kept in a git-tracked
file (tuned/<m>-h<h>.yaml) that the training stage reads rather than recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendfactory.errors import ParamsError, TrendfactoryError
from trendfactory.evaluation.ic import daily_ic
from trendfactory.models import create, get_model_class, model_config
from trendfactory.models.base import FitContext, TrendModel
from trendfactory.models.data import Samples, load_split
from trendfactory.models.search import Choice, apply_values, suggest
from trendfactory.parallel import Placement, chdir_to, pin_threads, run_tasks, slots, task_resources
from trendfactory.params import Params, TuneConfig, config_to_dict
from trendfactory.paths import STUDIES_DIR, WINDOWS_DIR
from trendfactory.runtime import configure_logging, seed_everything

log = logging.getLogger("trendfactory")

FINISHED = ("COMPLETE", "PRUNED", "FAIL")
HEARTBEAT_S = 60  # RDB storage: a RUNNING trial silent for GRACE_S is taken as killed
GRACE_S = 180
RETRY_OF = "retry_of"  # user attr of the queued copy of a killed trial (RDB's own retry: system attr failed_trial)


@dataclass(frozen=True)
class StudySpec:
    """Everything a trial worker needs (picklable: it travels to Ray tasks)."""

    model: str
    horizon: int
    config: dict  # the model's params.yaml section
    train: Any  # TrainConfig or None
    seed: int
    n_folds: int
    tune: TuneConfig
    study_name: str
    storage: str | None  # None: the journal file below
    journal: Path
    root: Path
    threads: int  # pinned in every trial worker (parallel.pin_threads)
    uses_torch: bool


def study_name(params: Params, model: str, horizon: int) -> str:
    """<model>-h<h>-<fingerprint of the data, the model's params, the trainer's, the space and seed>."""
    cls = get_model_class(model)
    meta = (WINDOWS_DIR / "meta.json").read_bytes() if (WINDOWS_DIR / "meta.json").is_file() else b""
    key = {
        "data": hashlib.sha256(meta).hexdigest(),
        "config": config_to_dict(model_config(params, model)),
        "train": config_to_dict(params.train) if cls.uses_trainer else None,
        "space": repr(sorted(cls.search_space.items())),
        "seed": params.seed,
        "tune": {"pruner": params.tune.pruner, "startup_trials": params.tune.startup_trials},
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{model}-h{horizon}-{digest}"


def studies_dir(root: Path) -> Path:
    """Where the journal files live: the project's own .tuning/, also when ``root`` is one of
    DVC's temporary experiment workspaces inside it (<project>/.dvc/tmp/exps/<run>/...)."""
    parts = root.resolve().parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i]) / STUDIES_DIR
    return root / STUDIES_DIR


def _process_tag(pid: int | None = None) -> str | None:
    """host:pid:start time of a process (None when it does not exist): a pid reused by another
    process after a kill gets another start time."""
    import psutil

    try:
        proc = psutil.Process(pid or os.getpid())
        return f"{socket.gethostname()}:{proc.pid}:{proc.create_time():.2f}"
    except psutil.Error:
        return None


def _gone(tag: str) -> bool:
    """Whether the process a trial recorded is known to be gone (only decidable on its own machine)."""
    host, pid, _ = tag.rsplit(":", 2)
    return host == socket.gethostname() and _process_tag(int(pid)) != tag


def recover_killed(study) -> int:
    """Mark the RUNNING trials whose process is gone as failed (``killed``) and queue their
    params again, to be run first; returns how many. RDB storage does the same by heartbeat
    when the study is optimized."""
    from optuna.trial import TrialState

    killed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = t.user_attrs.get("process")
        if tag and _gone(tag):
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={RETRY_OF: t.number, **({"default": True} if t.user_attrs.get("default") else {})}, skip_if_exists=False)
            log.warning("%s: trial %d was left RUNNING by a killed process (%s): marked failed, queued again", study.study_name, t.number, tag)
            killed += 1
    return killed


def counted(trials) -> int:
    """Trials that count towards tune.trials: finished ones, bar those failed by a kill (their
    queued copy runs instead)."""
    retried = {t.user_attrs.get(RETRY_OF) for t in trials} | {t.system_attrs.get("failed_trial") for t in trials}
    return sum(t.state.name in FINISHED and not (t.state.name == "FAIL" and t.number in retried) for t in trials)


def open_study(spec: StudySpec):
    """The study in its storage (created on first use; loaded if it exists: an interrupted one resumes)."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError  # Optuna's RDB storage is SQLAlchemy

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own log lines say what happened
    if spec.storage is None:
        spec.journal.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(str(spec.journal)))
    else:
        from optuna.storages import RDBStorage, RetryFailedTrialCallback

        try:  # heartbeats: a trial whose process was killed is failed after GRACE_S and retried
            with warnings.catch_warnings():  # Optuna marks heartbeats experimental (since 2.8)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(spec.storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, failed_trial_callback=RetryFailedTrialCallback(max_retry=None))
        except (ImportError, ValueError, RuntimeError, SQLAlchemyError) as exc:
            raise TrendfactoryError(f"tune.storage {spec.storage!r}: cannot open an Optuna study there ({str(exc).splitlines()[0]})") from None
    sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=spec.tune.startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=spec.tune.startup_trials, n_warmup_steps=0) if spec.tune.pruner == "median" else optuna.pruners.NopPruner()
    try:
        return optuna.create_study(study_name=spec.study_name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize", load_if_exists=True)
    except (ImportError, ValueError, RuntimeError, SQLAlchemyError) as exc:  # a bad URL, a missing DB driver, no server
        raise TrendfactoryError(f"tune.storage {spec.storage!r}: cannot open an Optuna study there ({str(exc).splitlines()[0]})") from None


def pooled_rank_ic(frames: list[pd.DataFrame]) -> float:
    """Mean daily Rank IC over every date of ``frames`` (folds' validation blocks), -1 if none."""
    ic = daily_ic(pd.concat(frames, ignore_index=True), method="spearman")
    return float(ic.mean()) if len(ic) else -1.0


def load_folds(spec: StudySpec) -> list[tuple[Samples, Samples]]:
    """Every fold's (train, val) samples, read and scaled once per worker: the store's cache
    holds one fold, so reading them per trial would rescale every fold in every trial."""
    return [(load_split("train", spec.horizon, k), load_split("val", spec.horizon, k)) for k in range(spec.n_folds)]


def score_fold(model: TrendModel, train: Samples, val: Samples) -> pd.DataFrame:
    """Fit ``model`` on a fold's train block (validation for early stopping) and return its
    validation predictions: datetime, score, ret."""
    model.fit(train, val, FitContext())
    keys = val.keys()
    return pd.DataFrame({"datetime": np.asarray(keys["datetime"]), "score": model.predict(val).score, "ret": val.returns().astype(np.float64)})


def objective(spec: StudySpec, folds: list[tuple[Samples, Samples]], trial) -> float:
    """One trial: the pooled validation Rank IC of the sampled params over the folds."""
    import optuna

    trial.set_user_attr("process", _process_tag())  # lets a later run see that a killed trial's process is gone
    cls = get_model_class(spec.model)
    values = suggest(trial, cls.search_space)
    trial.set_user_attr("values", values)  # list-valued choices are stored by index: keep the values
    config, train = apply_values(spec.model, spec.config, spec.train, values, f"trial {trial.number}")
    frames = []
    t0 = time.perf_counter()
    for k, (train_k, val_k) in enumerate(folds):
        seed_everything(spec.seed)
        model = create(spec.model, config, horizon=spec.horizon, seed=spec.seed, train=train)
        frames.append(score_fold(model, train_k, val_k))
        value = pooled_rank_ic(frames)
        trial.report(value, step=k)
        if k < spec.n_folds - 1 and trial.should_prune():
            log.info("%s-h%d trial %d pruned after fold %d (pooled val Rank IC %+.4f, %.0fs)", spec.model, spec.horizon, trial.number, k, value, time.perf_counter() - t0)
            raise optuna.TrialPruned()
    log.info("%s-h%d trial %d: pooled val Rank IC %+.4f (%.0fs) %s", spec.model, spec.horizon, trial.number, value, time.perf_counter() - t0, _short(values))
    return value


def _short(values: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def trial_worker(job: tuple[StudySpec, int]) -> int:
    """Run ``quota`` trials of the study (queued ones first); returns how many ran. A Ray task
    (or the stage itself, when one worker is all the machine has room for)."""
    spec, quota = job
    chdir_to(spec.root)
    configure_logging("tune")
    pin_threads(spec.threads, torch_too=spec.uses_torch)
    study = open_study(spec)
    before = len(study.get_trials(deepcopy=False))
    if quota > 0:
        folds = load_folds(spec)
        # ParamsError: a sampled combination the model refuses (recorded as a failed trial, logged)
        target = stop_at(spec.tune.trials)
        study.optimize(lambda t: objective(spec, folds, t), n_trials=quota, catch=(ParamsError,), gc_after_trial=False, callbacks=[target])
    return len(study.get_trials(deepcopy=False)) - before


def stop_at(trials: int):
    """An Optuna callback that stops a worker once the study counts ``trials`` trials, whoever ran
    them: queued or temporary experiments that share a study run at the same time, and each
    counted the study before the others' trials finished (two queued runs of 3 and 5 trials
    made 8 without it)."""

    def callback(study, trial) -> None:
        if counted(study.get_trials(deepcopy=False)) >= trials:
            study.stop()

    return callback


def quotas(remaining: int, workers: int) -> list[int]:
    """``remaining`` trials shared by ``workers`` (the first ones take one more): the study ends
    with exactly tune.trials, never one per worker too many."""
    workers = max(0, min(workers, remaining))
    return [remaining // workers + (i < remaining % workers) for i in range(workers)] if workers else []


def enqueue_default(study, space: dict, config: Any, train: Any) -> None:
    """Make the params.yaml configuration the study's first trial (when it lies inside the
    space), so the tuned model is measured against the default on the same objective."""
    if study.get_trials(deepcopy=False):
        return
    current = {**config_to_dict(config), **{f"train.{k}": v for k, v in (config_to_dict(train) if train else {}).items()}}
    fixed: dict[str, Any] = {}
    for key, dim in space.items():
        value = current.get(key)
        if isinstance(dim, Choice):
            options = [list(o) if isinstance(o, tuple) else o for o in dim.options]
            if value not in options:
                return
            fixed[key] = options.index(value) if any(isinstance(o, tuple) for o in dim.options) else value
        elif value is None or not dim.low <= value <= dim.high:
            return
        else:
            fixed[key] = value
    study.enqueue_trial(fixed, user_attrs={"default": True})


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to the project (a temporary experiment's journal lies above its workspace)."""
    base = studies_dir(root).parent
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


@dataclass
class StudyResult:
    name: str
    record: dict  # what tuned/<m>-h<h>.yaml holds
    study: Any  # the optuna Study (for plots)


def run_study(params: Params, model: str, horizon: int, n_folds: int, where: Placement) -> StudyResult:
    """The model's study at ``horizon``: its trials fanned out on Ray, then the best trial."""
    cls = get_model_class(model)
    root = Path.cwd().resolve()
    name = study_name(params, model, horizon)
    config = model_config(params, model)
    train = params.train if cls.uses_trainer else None
    spec = StudySpec(
        model=model,
        horizon=horizon,
        config=config,
        train=train,
        seed=params.seed,
        n_folds=n_folds,
        tune=params.tune,
        study_name=name,
        storage=params.tune.storage,
        journal=studies_dir(root) / f"{model}-h{horizon}.journal",
        root=root,
        threads=cls.threads(config),
        uses_torch=cls.uses_trainer,
    )
    study = open_study(spec)
    enqueue_default(study, cls.search_space, config, train)
    recover_killed(study)
    done = counted(study.get_trials(deepcopy=False))
    device = params.train.device if cls.uses_trainer else None
    where, cpus, gpu_share = task_resources(where, spec.threads, device, params.parallel.fits_per_gpu)
    shares = quotas(params.tune.trials - done, slots(where, cpus, gpu_share) if not where.is_cluster else params.tune.trials)
    log.info("study %s: %d of %d trials finished; %d worker%s (%s)", name, done, params.tune.trials, len(shares), "s" if len(shares) != 1 else "", params.tune.storage or _shown(spec.journal, root))
    t0 = time.perf_counter()
    if shares:
        run_tasks(trial_worker, [(spec, q) for q in shares], where, cpus_per_task=cpus, gpus_per_task=gpu_share, what="trial worker")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        raise TrendfactoryError(f"study {name}: no trial completed ({len(trials)} pruned or failed); see the log above")
    best = study.best_trial
    default = next((t for t in trials if t.user_attrs.get("default")), None)
    record = {
        "params": best.user_attrs.get("values", best.params),
        "objective": "pooled validation Rank IC of the walk-forward folds (mean daily Spearman IC over every fold's validation dates)",
        "value": round(float(best.value), 6),
        "default_value": round(float(default.value), 6) if default is not None and default.value is not None else None,
        "best_trial": best.number,
        "trials": {s.lower(): sum(t.state.name == s for t in trials) for s in FINISHED},
        "counted": counted(trials),
        "study": name,
        "storage": params.tune.storage or _shown(spec.journal, root),
    }  # no timings: this file is git-tracked and DVC-hashed
    log.info(
        "study %s: best trial %d, pooled val Rank IC %+.4f (default %s) in %.0fs",
        name,
        best.number,
        best.value,
        "n/a" if record["default_value"] is None else f"{record['default_value']:+.4f}",
        time.perf_counter() - t0,
    )
    return StudyResult(name=name, record=record, study=study)
