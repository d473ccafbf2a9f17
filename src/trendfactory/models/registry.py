"""The one model registry: ``register`` (a decorator in each model's own file), ``create``,
``get_model_class`` and ``list_models`` -- in the spirit of timm's ``register_model`` /
``create_model`` / ``list_models``.

Models are registered as ``family:name``; a bare ``name`` resolves when exactly one family
has it. An unknown name raises an error that lists the available ones.

A model is declared once, in its own file ``models/zoo/<name>.py``: the decorator names its
family, its **kind** and its **config** dataclass (the schema and defaults of its
``models.<name>`` params section). Everything else derives from that declaration:

- kind ``tabular``: one fit per horizon, stages ``train@<name>-<h>`` / ``evaluate@<name>-<h>``,
  listed under ``run.models``; never imports torch;
- kind ``network``: a network of the shared trainer with one head per horizon, stages
  ``train_neural@<name>`` / ``evaluate_neural@<name>-<h>``, listed under ``run.neural_models``;
  its stages also read the ``train`` section;
- kind ``joint``: a multi-task network trained once for every horizon with its own objective
  (the dual tower), stages ``train_joint@<name>`` / ``evaluate_joint@<name>-<h>``, listed under
  ``run.joint_models``.

Registration fails with a clear message when the declaration and the class disagree (a tabular
model that trains through the torch trainer, a config that is not a frozen dataclass with
defaults, a file name that is not the model name, ...).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from trendfactory.errors import ParamsError, TrendfactoryError
from trendfactory.models.base import REQUIRED_HOOKS, TrendModel, set_saved_model_resolver
from trendfactory.params import build_config, model_names

FAMILIES = ("baseline", "classical", "boosting", "neural", "dual_tower", "pretrained")
KINDS = ("tabular", "network", "joint")
#: per kind: the run list that holds its models and the stage that trains them
RUN_LIST = {"tabular": "models", "network": "neural_models", "joint": "joint_models"}
TRAIN_STAGE = {"tabular": "train", "network": "train_neural", "joint": "train_joint"}
EVALUATE_STAGE = {"tabular": "evaluate", "network": "evaluate_neural", "joint": "evaluate_joint"}

# Each built-in model lives in models/zoo/<name>.py (so a train stage can depend on exactly its
# own file); importing it registers it. Heavy libraries load lazily inside the models.
# A lookup by name imports only that model's file (a tabular model's stage never imports torch);
# listing imports them all.
ZOO = "trendfactory.models.zoo"

_REGISTRY: dict[str, type[TrendModel]] = {}  # "family:name" -> class
_loaded = False


class UnknownModelError(TrendfactoryError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry, as `trendfactory models` lists it."""

    full_name: str
    family: str
    name: str
    kind: str
    needs_sequences: bool
    can_use_gpu: bool
    doc: str


def register(family: str, name: str, *, kind: str, config: type, needs_sequences: bool = False, can_use_gpu: bool = False):
    """Class decorator: register a :class:`TrendModel` subclass as ``family:name`` of ``kind``
    (tabular | network | joint) with ``config`` (a frozen dataclass with a default for every
    field) as the schema of its ``models.<name>`` section."""
    full = f"{family}:{name}"
    if family not in FAMILIES:
        raise ValueError(f"register({full}): family {family!r} is not one of {', '.join(FAMILIES)}")
    if kind not in KINDS:
        raise ValueError(f"register({full}): kind {kind!r} is not one of {', '.join(KINDS)}")
    if not (dataclasses.is_dataclass(config) and isinstance(config, type) and config.__dataclass_params__.frozen):
        raise TypeError(f"register({full}): config must be a frozen dataclass (@dataclass(frozen=True)), got {config!r}")
    try:
        config()
    except TypeError as exc:
        raise TypeError(f"register({full}): every field of {config.__name__} needs a default ({exc})") from None

    def decorator(cls: type[TrendModel]) -> type[TrendModel]:
        if not (isinstance(cls, type) and issubclass(cls, TrendModel)):
            raise TypeError(f"register({full}): {cls!r} is not a TrendModel subclass")
        missing = [h for h in REQUIRED_HOOKS if getattr(cls, h) is getattr(TrendModel, h)]
        if missing:
            raise TypeError(f"register({full}): {cls.__name__} does not implement {', '.join(missing)}")
        module = cls.__module__
        if module.startswith(f"{ZOO}.") and module != f"{ZOO}.{name}":
            raise TypeError(f"register({full}): the model is in {module}; a model's file is models/zoo/{name}.py (the name is how stages find it)")
        if kind == "tabular" and cls.uses_trainer:
            raise TypeError(f"register({full}): declared kind 'tabular' but {cls.__name__} trains through the torch trainer; declare kind 'network'")
        if kind != "tabular" and not cls.uses_trainer:
            raise TypeError(
                f"register({full}): declared kind {kind!r} but {cls.__name__} does not train through the torch trainer "
                "(subclass models.common.neural.NeuralModel, or models.common.joint.JointModel for kind joint); declare kind 'tabular'"
            )
        if kind != "tabular" and not cls.joint:
            raise TypeError(f"register({full}): a {kind} model serves every horizon from one fit (joint = True)")
        if kind == "tabular" and cls.joint:
            raise TypeError(f"register({full}): a tabular model is fitted per horizon (joint = False)")
        existing = _REGISTRY.get(full)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"register({full}): already registered by {existing.__module__}.{existing.__qualname__}")
        cls.family, cls.name, cls.kind, cls.config_class = family, name, kind, config
        cls.needs_sequences, cls.can_use_gpu = needs_sequences, can_use_gpu
        _REGISTRY[full] = cls
        return cls

    return decorator


def _ensure_loaded(name: str | None = None) -> None:
    """Import the built-in model called ``name`` (short or family:name), or all of them."""
    global _loaded
    if _loaded:
        return
    short = name.split(":", 1)[-1] if name else None
    if short in model_names():
        importlib.import_module(f"{ZOO}.{short}")
        return
    for n in model_names():
        importlib.import_module(f"{ZOO}.{n}")
    _loaded = True


def list_models(family: str | None = None) -> list[str]:
    """Registered ``family:name`` entries, sorted by family order then name."""
    _ensure_loaded()
    names = [k for k in _REGISTRY if family is None or k.split(":")[0] == family]
    return sorted(names, key=lambda k: (FAMILIES.index(k.split(":")[0]), k))


def model_info() -> list[ModelInfo]:
    """Every registry entry with its family and capability flags."""
    out = []
    for full in list_models():
        cls = _REGISTRY[full]
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        out.append(ModelInfo(full, cls.family, cls.name, cls.kind, cls.needs_sequences, cls.can_use_gpu, doc))
    return out


def resolve(name: str) -> str:
    """``family:name`` for a full or short name; an unknown or ambiguous one lists the options."""
    _ensure_loaded(name)
    if name in _REGISTRY:
        return name
    hits = [k for k in _REGISTRY if k.split(":", 1)[1] == name]
    if len(hits) == 1 and ":" not in name:
        return hits[0]
    _ensure_loaded()  # to list every model (and to see every family with this name)
    hits = [k for k in _REGISTRY if k.split(":", 1)[1] == name]
    if len(hits) == 1 and ":" not in name:
        return hits[0]
    available = ", ".join(list_models())
    if len(hits) > 1:
        raise UnknownModelError(f"model {name!r} is ambiguous ({', '.join(hits)}); use family:name")
    raise UnknownModelError(f"unknown model {name!r}; available: {available}")


#: the name of a model's tuned variant: <name>_tuned (run.tune; trendfactory.tuning)
TUNED_SUFFIX = "_tuned"
_VARIANTS: dict[str, type[TrendModel]] = {}  # "family:name_tuned" -> class; never listed as models


def tuned_variant(cls: type[TrendModel]) -> type[TrendModel]:
    """``cls`` under the name ``<name>_tuned``: fitted per horizon (``joint`` False, so a
    network's stage trains it for one horizon) with the best params of its study, and saved,
    evaluated and compared as a model of its own beside the default one."""
    if cls.joint and cls.kind == "joint":
        raise ParamsError(f"run.tune: {cls.name} is trained for every horizon jointly; tuning covers tabular models and networks")
    full = f"{cls.family}:{cls.name}{TUNED_SUFFIX}"
    if full not in _VARIANTS:
        _VARIANTS[full] = type(
            f"{cls.__name__}Tuned",
            (cls,),
            {
                "name": cls.name + TUNED_SUFFIX,
                "joint": False,
                "base_name": cls.name,
                "__module__": cls.__module__,
                "__doc__": f"{cls.name} with the hyperparameters of its Optuna study (tuned/{cls.name}-h<h>.yaml).",
            },
        )
    return _VARIANTS[full]


def get_model_class(name: str) -> type[TrendModel]:
    """The class of a registered model, or of a tuned variant ``<name>_tuned``."""
    if name.endswith(TUNED_SUFFIX):
        return tuned_variant(_REGISTRY[resolve(name[: -len(TUNED_SUFFIX)])])
    return _REGISTRY[resolve(name)]


def parse_config(name: str, raw: Mapping | None, seq_len: int | None = None) -> Any:
    """The typed ``models.<name>`` section, validated against the config the model declares
    (imports only that model's file); with ``seq_len``, every lag must stay inside the window."""
    try:
        cls = get_model_class(name)
    except UnknownModelError as exc:
        raise ParamsError(f"models.{name}: {exc}") from None
    config = build_config(cls.config_class, raw or {}, f"models.{cls.name}")
    for i, lag in enumerate(getattr(config, "lags", ()) or ()):
        if seq_len is not None and lag >= seq_len:
            raise ParamsError(f"models.{cls.name}.lags[{i}]: got {lag}, expected less than window.seq_len ({seq_len}) so the lagged row stays inside the window")
    return config


def model_config(params: Any, name: str) -> Any:
    """The typed ``models.<name>`` section of ``params`` (parsed once; see ``parse_config``)."""
    return params.models.typed(name, parse_config)


def check_listed(run: Any, cls: type[TrendModel]) -> None:
    """``cls`` is not listed under another kind's run list (imports nothing else)."""
    for key in RUN_LIST.values():
        if key != RUN_LIST[cls.kind] and cls.name in getattr(run, key):
            raise ParamsError(f"run.{key}: {cls.name!r} is a {cls.kind} model; it belongs under run.{RUN_LIST[cls.kind]}")


def check_run_lists(run: Any) -> None:
    """Every model in the run lists sits in the list of its kind, and every model in run.tune
    can be tuned and is in its run list (imports the listed models)."""
    for key in RUN_LIST.values():
        for i, name in enumerate(getattr(run, key)):
            cls = get_model_class(name)
            if RUN_LIST[cls.kind] != key:
                raise ParamsError(f"run.{key}[{i}]: {name!r} is a {cls.kind} model; it belongs under run.{RUN_LIST[cls.kind]}")
    for i, name in enumerate(run.tune):
        check_tunable(run, name, f"run.tune[{i}]")


def check_tunable(run: Any, name: str, where: str = "run.tune") -> type[TrendModel]:
    """The class of a model in run.tune, or a ParamsError saying why it cannot be tuned."""
    try:
        cls = get_model_class(name)
    except UnknownModelError as exc:
        raise ParamsError(f"{where}: {exc}") from None
    if cls.base_name:
        raise ParamsError(f"{where}: list the model itself ({cls.base_name}), not its tuned variant")
    if cls.kind == "joint":
        raise ParamsError(f"{where}: {name} is trained for every horizon jointly; tuning covers tabular models and networks")
    if not cls.search_space:
        raise ParamsError(f"{where}: {name} declares no search space (search_space in models/zoo/{name}.py)")
    if name not in getattr(run, RUN_LIST[cls.kind]):
        raise ParamsError(f"{where}: {name} is not in run.{RUN_LIST[cls.kind]}; add it there (tuned and default are compared side by side)")
    return cls


def validate_all(params: Any) -> None:
    """Every ``models.<name>`` section and every run list, at once (imports every model)."""
    for name in model_names():
        model_config(params, name)
    check_run_lists(params.run)


def create(name: str, config: Any = None, *, horizon: int = 5, seed: int = 0, train: Any = None, **overrides: Any) -> TrendModel:
    """A new, unfitted model. ``config``: its ``models.<name>`` section (a dataclass or a
    mapping; defaults when None); ``overrides`` replace single keys, validated like params.yaml;
    ``train``: the shared trainer's section, for models that train through it."""
    cls = get_model_class(name)
    if config is None or isinstance(config, dict):
        config = parse_config(cls.name, {**(config or {}), **overrides})
    elif overrides:
        from trendfactory.params import config_to_dict

        config = parse_config(cls.name, {**config_to_dict(config), **overrides})
    if cls.uses_trainer:
        return cls(config, horizon=horizon, seed=seed, train=train)
    return cls(config, horizon=horizon, seed=seed)


def train_stage(name: str, horizon: int) -> str:
    """The DVC stage that trains a model at a horizon: train@<m>-<h>, train_neural@<m> or train_joint@<m>."""
    cls = get_model_class(name)
    if cls.joint:  # one fit for every horizon: one stage per model
        return f"{TRAIN_STAGE[cls.kind]}@{cls.name}"
    return f"{TRAIN_STAGE[cls.kind]}@{cls.name}-{int(horizon)}"


def _saved_model(name: str, config: Mapping) -> tuple[type[TrendModel], Any]:
    """A saved model's class and typed config, for ``TrendModel.load``."""
    cls = get_model_class(name)
    return cls, parse_config(cls.name, config)


set_saved_model_resolver(_saved_model)
