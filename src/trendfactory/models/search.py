"""Search-space declarations for hyperparameter studies (run.tune).

A model declares the hyperparameters a study may search beside its config, as the class
attribute ``search_space``::

    search_space = {"learning_rate": Float(0.005, 0.2, log=True), "num_leaves": Int(4, 64, log=True),
                    "train.lr": Float(1e-4, 3e-3, log=True)}

Keys are fields of the model's ``models.<name>`` section, or ``train.<field>`` for the shared
torch trainer (networks). The declarations are plain data (no Optuna import) so that listing a
model costs nothing; :func:`suggest` turns one into a trial's values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trendfactory.errors import TrendfactoryError
from trendfactory.paths import TUNED_DIR

TRAIN_PREFIX = "train."


@dataclass(frozen=True)
class Float:
    """A real in [low, high], sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    """An integer in [low, high], sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (numbers, strings, booleans, or tuples for list-valued keys)."""

    options: tuple


Dimension = Float | Int | Choice


def suggest(trial: Any, space: dict[str, Dimension]) -> dict[str, Any]:
    """One value per key of ``space`` from an Optuna trial (tuples come back as lists, as YAML has them)."""
    out: dict[str, Any] = {}
    for key, dim in space.items():
        if isinstance(dim, Float):
            out[key] = trial.suggest_float(key, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Int):
            out[key] = trial.suggest_int(key, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Choice):
            # Optuna stores categorical choices as str/int/float/bool/None: list values go by index
            if any(isinstance(o, (tuple, list)) for o in dim.options):
                out[key] = list(dim.options[trial.suggest_categorical(key, list(range(len(dim.options))))])
            else:
                out[key] = trial.suggest_categorical(key, list(dim.options))
        else:
            raise TypeError(f"search space key {key!r}: {dim!r} is not a Float, Int or Choice")
    return out


def split_keys(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model section overrides, ``train`` overrides) of one set of sampled values."""
    model = {k: v for k, v in values.items() if not k.startswith(TRAIN_PREFIX)}
    train = {k[len(TRAIN_PREFIX) :]: v for k, v in values.items() if k.startswith(TRAIN_PREFIX)}
    return model, train


# ---- the tuned-params file: what a study found, what the train stage of <name>_tuned reads ----


def tuned_file(model: str, horizon: int) -> Path:
    """tuned/<model>-h<h>.yaml (``model`` the tuned model's own name, e.g. xgboost)."""
    return TUNED_DIR / f"{model}-h{int(horizon)}.yaml"


HEADER = """\
# Written by `dvc repro tune@{model}-{horizon}` (Optuna studies, one per walk-forward fold after the
# first; trendfactory.tuning). The train stage of {model}_tuned at h={horizon} fits fold k with
# `folds`[k] `params`: the best values of fold k's study (chosen on the validation blocks of folds
# 0..k-1 only, never on fold k's own; fold 0: none, params.yaml's) over the model's section of
# params.yaml (`train.*` keys over the `train` section). Git-tracked, so a tuned run reproduces
# with `dvc repro`; edit nothing here by hand: rerun the study instead.
"""


def write_tuned(path: Path, model: str, horizon: int, record: dict[str, Any]) -> None:
    """``record`` (with ``folds``, each with its ``params``) as YAML under a header that says
    where it came from, atomically."""
    from trendfactory.io import atomic_path

    text = HEADER.format(model=model, horizon=horizon) + yaml.safe_dump(record, sort_keys=False, default_flow_style=None)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_tuned(model: str, horizon: int, n_folds: int) -> list[dict[str, Any]]:
    """Per fold, the ``params`` of tuned/<model>-h<h>.yaml, or a one-line error naming the fix."""
    path = tuned_file(model, horizon)
    rerun = f"rerun `dvc repro -f tune@{model}-{horizon}`"
    if not path.is_file():
        raise TrendfactoryError(f"{path}: missing; run `dvc repro tune@{model}-{horizon}` (run.tune lists {model})")
    try:
        record = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TrendfactoryError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); {rerun}") from None
    folds = record.get("folds") if isinstance(record, dict) else None
    if not isinstance(folds, list) or not all(isinstance(f, dict) and isinstance(f.get("params"), dict) for f in folds):
        raise TrendfactoryError(f"{path}: no `folds` list with a `params` mapping each; {rerun}")
    if [f.get("fold") for f in folds] != list(range(n_folds)):
        raise TrendfactoryError(f"{path}: params for folds {[f.get('fold') for f in folds]}, the window store has folds 0..{n_folds - 1}; {rerun}")
    return [f["params"] for f in folds]


def apply_values(model: str, config: Any, train: Any, values: dict[str, Any], origin: str) -> tuple[Any, Any]:
    """(model config, train config) with ``values`` over them, validated like params.yaml
    (an unknown or bad key names ``origin``)."""
    from trendfactory.errors import ParamsError
    from trendfactory.models.registry import parse_config
    from trendfactory.params import TrainConfig, build_config, config_to_dict

    model_values, train_values = split_keys(values)
    try:
        config = parse_config(model, {**config_to_dict(config), **model_values})
        if train_values:
            if train is None:
                raise ParamsError(f"train.{next(iter(train_values))}: {model} does not train through the torch trainer")
            train = build_config(TrainConfig, {**config_to_dict(train), **train_values}, "train")
    except ParamsError as exc:
        raise TrendfactoryError(f"{origin}: {exc}") from None
    return config, train


def tuned_configs(model: str, horizon: int, fold_values: list[dict[str, Any]], config: Any, train: Any) -> list[tuple[Any, Any]]:
    """Per fold, the configs <model>_tuned trains with at ``horizon``: its params.yaml sections
    with that fold's study's best values (``read_tuned``'s list) over them."""
    origin = str(tuned_file(model, horizon))
    return [apply_values(model, config, train, values, f"{origin} fold {k}") for k, values in enumerate(fold_values)]


def check_space(cls: type, space: dict[str, Dimension]) -> None:
    """Every key of a declared search space names a field of the model's config (or of
    ``train`` for a trainer model) and every dimension is well formed."""
    from trendfactory.params import TrainConfig

    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} if cls.uses_trainer else set()
    for key, dim in space.items():
        ok = key[len(TRAIN_PREFIX) :] in train_fields if key.startswith(TRAIN_PREFIX) else key in fields
        if not ok:
            raise TypeError(f"{cls.name}.search_space: {key!r} is not a field of models.{cls.name}" + (" or train" if cls.uses_trainer else ""))
        if isinstance(dim, (Float, Int)) and not dim.low < dim.high:
            raise TypeError(f"{cls.name}.search_space[{key!r}]: low {dim.low} is not below high {dim.high}")
        if isinstance(dim, (Float, Int)) and dim.log and dim.low <= 0:
            raise TypeError(f"{cls.name}.search_space[{key!r}]: a log scale needs low > 0")
        if isinstance(dim, Choice) and len(dim.options) < 2:
            raise TypeError(f"{cls.name}.search_space[{key!r}]: a choice needs two options or more")
