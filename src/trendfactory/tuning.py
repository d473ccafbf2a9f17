"""Hyperparameter studies (Optuna) for the models in run.tune: per model x horizon, one study
per walk-forward fold after the first.

The params that fold k's tuned model trains with are chosen on the validation blocks of the
folds *before* k only: study k's trials fit folds 0..k-1 in order (each on its train block,
early stopping on its validation block, as the train stage does) and score the **pooled
validation Rank IC of folds 0..k-1**: the mean daily Spearman IC over those folds' validation
dates. Fold k's own validation block is left out on purpose: the walk-forward model selection
(trendfactory.evaluation.selection) scores each fold's fit on that block, and params chosen as
the best of many trials on it would score there with a winner's curse -- the tuned variant
would beat its default in the selection by construction (it did, at both horizons, when study k
still scored folds 0..k, and was worse on test at h = 20). Scored on a block its params never
saw, the tuned variant competes on the same footing as every other model. Fold 0 has no earlier
validation block, so it trains with params.yaml's configuration (no study). Test blocks are
never read. After each fold the running pooled value is reported, so a median pruner can stop a
trial whose first folds already trail the earlier trials. The cost: study k fits k folds per
trial, so F folds cost F(F-1)/2 fold fits per trial round (3 for the default 3 folds).

Trials run in parallel as Ray tasks (trendfactory.parallel): each task is a worker that loads
its study from the storage and runs its share of the trials still to run, so a study ends with
exactly ``tune.trials`` trials (a failed trial counts: its params were refused); the folds'
studies are independent, so their workers run side by side. The default storage is a journal
file per model and horizon (.tuning/<m>-h<h>.journal, safe for several processes, resumable)
in the project's own folder, also when DVC runs the stage in a temporary workspace (``dvc exp
run --temp``, ``dvc queue``: .dvc/tmp/exps/...), so queued and temporary experiments share and
resume studies with the workspace; ``tune.storage`` takes any Optuna RDB URL for workers on
many machines. A study's name carries a fingerprint of what its trials depend on (data,
params, space, and the code of the model and of this objective), so a changed input starts a
new study instead of mixing trials; the best trial is taken among the study's first
``tune.trials`` counted trials, so a study extended by an earlier run with more trials gives
the same answer as a fresh one.

A trial whose process was killed (SIGTERM, a lost machine) would stay RUNNING for ever. Each
trial records the process that runs it; before a study continues, a RUNNING trial whose process
is gone (journal: same machine, by process id and start time; RDB storage: Optuna's heartbeat,
``HEARTBEAT_S``) is marked failed and its params queued again, so it is retried first and does
not count as one of the ``tune.trials``.

With one worker per study the studies are deterministic (seeded sampler, seeded fits); with
several, which trial sees which history depends on timing, which is why the result is kept in
a git-tracked file (tuned/<m>-h<h>.yaml) that the training stage reads rather than recomputed.
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
from trendfactory.import_closure import source_hash
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
    fold: int  # the fold whose params the study chooses (>= 1): its trials fit folds 0..fold-1 and score their pooled validation
    tune: TuneConfig
    study_name: str
    storage: str | None  # None: the journal file below
    journal: Path
    root: Path
    threads: int  # pinned in every trial worker (parallel.pin_threads)
    uses_torch: bool


def study_name(params: Params, model: str, horizon: int, fold: int) -> str:
    """<model>-h<h>-f<fold>-<fingerprint of the data, the model's params, the trainer's, the space,
    the seed and the code the trials run>."""
    cls = get_model_class(model)
    meta = (WINDOWS_DIR / "meta.json").read_bytes() if (WINDOWS_DIR / "meta.json").is_file() else b""
    key = {
        "data": hashlib.sha256(meta).hexdigest(),
        "config": config_to_dict(model_config(params, model)),
        "train": config_to_dict(params.train) if cls.uses_trainer else None,
        "space": repr(sorted(cls.search_space.items())),
        "seed": params.seed,
        "tune": {"pruner": params.tune.pruner, "startup_trials": params.tune.startup_trials},
        "code": source_hash(__name__, cls.__module__),  # an edited model or objective: new trials, not the old code's
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{model}-h{horizon}-f{fold}-{digest}"


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


def counted_flags(trials) -> list[bool]:
    """Per trial, whether it counts towards tune.trials: finished ones, bar those failed by a
    kill (their queued copy runs instead)."""
    retried = {t.user_attrs.get(RETRY_OF) for t in trials} | {t.system_attrs.get("failed_trial") for t in trials}
    return [t.state.name in FINISHED and not (t.state.name == "FAIL" and t.number in retried) for t in trials]


def counted(trials) -> int:
    """How many of ``trials`` count towards tune.trials (:func:`counted_flags`)."""
    return sum(counted_flags(trials))


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
    """Folds 0..spec.fold-1's (train, val) samples, read and scaled once per worker: the store's
    cache holds one fold, so reading them per trial would rescale every fold in every trial."""
    return [(load_split("train", spec.horizon, k), load_split("val", spec.horizon, k)) for k in range(spec.fold)]


def score_fold(model: TrendModel, train: Samples, val: Samples) -> pd.DataFrame:
    """Fit ``model`` on a fold's train block (validation for early stopping) and return its
    validation predictions: datetime, score, ret."""
    model.fit(train, val, FitContext())
    keys = val.keys()
    return pd.DataFrame({"datetime": np.asarray(keys["datetime"]), "score": model.predict(val).score, "ret": val.returns().astype(np.float64)})


def objective(spec: StudySpec, folds: list[tuple[Samples, Samples]], trial) -> float:
    """One trial: the pooled validation Rank IC of the sampled params over folds 0..spec.fold-1."""
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
        if k < len(folds) - 1 and trial.should_prune():
            log.info("%s fold %d trial %d pruned after fold %d (pooled val Rank IC %+.4f, %.0fs)", _item(spec), spec.fold, trial.number, k, value, time.perf_counter() - t0)
            raise optuna.TrialPruned()
    log.info("%s fold %d trial %d: pooled val Rank IC %+.4f (%.0fs) %s", _item(spec), spec.fold, trial.number, value, time.perf_counter() - t0, _short(values))
    return value


def _item(spec: StudySpec) -> str:
    return f"{spec.model}-h{spec.horizon}"


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
    record: dict  # one fold's entry of tuned/<m>-h<h>.yaml
    study: Any  # the optuna Study (for plots); None for fold 0
    storage: str  # where the study lives: tune.storage, or its journal file relative to the project


OBJECTIVE = (
    "per walk-forward fold k >= 1, the pooled validation Rank IC of folds 0..k-1 (mean daily Spearman IC over their validation dates); "
    "fold k's own validation block, on which the model selection scores it, is never tuned on; fold 0 keeps params.yaml's configuration"
)
UNTUNED = "no validation block precedes fold 0's: params.yaml's configuration"


def first_counted(trials: list, n: int) -> list:
    """The study's trials up to its ``n``-th counted one, in trial-number order: what a fresh
    study of ``tune.trials`` = n holds, however many trials an earlier run added."""
    trials = sorted(trials, key=lambda t: t.number)
    seen = 0
    for i, flag in enumerate(counted_flags(trials)):
        seen += flag
        if seen >= n:
            return trials[: i + 1]
    return trials


def best_of(trials: list, name: str):
    """The best COMPLETE trial of ``trials`` (ties: the earlier trial)."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        raise TrendfactoryError(f"study {name}: no trial completed ({len(trials)} pruned or failed); see the log above")
    return max(complete, key=lambda t: (t.value, -t.number))


def study_spec(params: Params, model: str, horizon: int, fold: int, root: Path) -> StudySpec:
    """The spec of the model's study for ``fold`` at ``horizon``."""
    cls = get_model_class(model)
    config = model_config(params, model)
    return StudySpec(
        model=model,
        horizon=horizon,
        config=config,
        train=params.train if cls.uses_trainer else None,
        seed=params.seed,
        fold=fold,
        tune=params.tune,
        study_name=study_name(params, model, horizon, fold),
        storage=params.tune.storage,
        journal=studies_dir(root) / f"{model}-h{horizon}.journal",
        root=root,
        threads=cls.threads(config),
        uses_torch=cls.uses_trainer,
    )


def run_studies(params: Params, model: str, horizon: int, n_folds: int, where: Placement) -> list[StudyResult]:
    """The model's studies at ``horizon``, one per fold after the first: their trials fanned out
    on Ray (the biggest study's workers first), then each study's best trial; fold 0's entry is
    params.yaml's configuration (no earlier validation block to tune it on)."""
    if n_folds < 2:
        raise TrendfactoryError(
            f"tune@{model}-{horizon}: the window store has {n_folds} fold; fold k's params are tuned on the validation blocks of the folds before k, "
            "and none precedes fold 0's -- remove it from run.tune, or use split.scheme: walk_forward with 2 or more folds (an earlier split.test_start or a shorter split.fold)"
        )
    cls = get_model_class(model)
    root = Path.cwd().resolve()
    specs = [study_spec(params, model, horizon, k, root) for k in range(1, n_folds)]
    studies = [open_study(spec) for spec in specs]
    device = params.train.device if cls.uses_trainer else None
    where, cpus, gpu_share = task_resources(where, specs[0].threads, device, params.parallel.fits_per_gpu)
    room = slots(where, cpus, gpu_share) if not where.is_cluster else params.tune.trials
    jobs = []
    for spec, study in zip(specs, studies):
        enqueue_default(study, cls.search_space, spec.config, spec.train)
        recover_killed(study)
        done = counted(study.get_trials(deepcopy=False))
        shares = quotas(params.tune.trials - done, room)
        log.info("study %s (fold %d): %d of %d trials finished; %d worker%s", spec.study_name, spec.fold, done, params.tune.trials, len(shares), "s" if len(shares) != 1 else "")
        jobs += [(spec, q) for q in shares]
    storage = params.tune.storage or _shown(specs[0].journal, root)
    log.info("%s-h%d: %d studies (folds 1..%d; fold 0 keeps params.yaml's configuration) in %s", model, horizon, len(specs), n_folds - 1, storage)
    t0 = time.perf_counter()
    jobs.sort(key=lambda job: -job[0].fold)  # study k fits k folds a trial: the longest workers start first
    if jobs:
        run_tasks(trial_worker, jobs, where, cpus_per_task=cpus, gpus_per_task=gpu_share, what="trial worker")
    results = [study_result(spec, study, params.tune.trials, storage) for spec, study in zip(specs, studies)]
    log.info("%s-h%d: %d studies done in %.0fs", model, horizon, len(specs), time.perf_counter() - t0)
    untuned = StudyResult(record={"fold": 0, "params": {}, "study": None, "note": UNTUNED}, study=None, storage=storage)
    return [untuned, *results]


def study_result(spec: StudySpec, study, n: int, storage: str) -> StudyResult:
    """One fold's entry of the tuned file, from the study's first ``n`` counted trials only (a
    study an earlier run extended gives what a fresh one of ``n`` trials gives)."""
    trials = first_counted(study.get_trials(deepcopy=False), n)
    best = best_of(trials, spec.study_name)
    default = next((t for t in trials if t.user_attrs.get("default")), None)
    record = {
        "fold": spec.fold,
        "scored_folds": list(range(spec.fold)),  # whose validation blocks the study pooled
        "params": best.user_attrs.get("values", best.params),
        "value": round(float(best.value), 6),
        "default_value": round(float(default.value), 6) if default is not None and default.value is not None else None,
        "best_trial": best.number,
        "trials": {s.lower(): sum(t.state.name == s for t in trials) for s in FINISHED},
        "counted": counted(trials),
        "study": spec.study_name,
    }  # no timings: this file is git-tracked and DVC-hashed
    shown = "n/a" if record["default_value"] is None else f"{record['default_value']:+.4f}"
    log.info("study %s: best trial %d, pooled val Rank IC of folds 0..%d %+.4f (default %s)", spec.study_name, best.number, spec.fold - 1, best.value, shown)
    return StudyResult(record=record, study=study, storage=storage)
