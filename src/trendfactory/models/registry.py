"""The one model registry: ``register`` (a decorator in each model's own file), ``create``,
``get_model_class`` and ``list_models`` -- in the spirit of timm's ``register_model`` /
``create_model`` / ``list_models``.

Models are registered as ``family:name``; a bare ``name`` resolves when exactly one family
has it. An unknown name raises an error that lists the available ones. Registration checks
the contract (the four hooks exist) and that the model has a params section
(``models.<name>`` in params.yaml), so a model can never be run without validated params.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from trendfactory.errors import TrendfactoryError
from trendfactory.models.base import REQUIRED_HOOKS, TrendModel
from trendfactory.params import model_names, parse_model_config

FAMILIES = ("baseline", "classical", "boosting", "neural", "dual_tower")

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
    needs_sequences: bool
    can_use_gpu: bool
    doc: str


def register(family: str, name: str, *, needs_sequences: bool = False, can_use_gpu: bool = False):
    """Class decorator: register a :class:`TrendModel` subclass as ``family:name``."""
    if family not in FAMILIES:
        raise ValueError(f"register: family {family!r} is not one of {', '.join(FAMILIES)}")

    def decorator(cls: type[TrendModel]) -> type[TrendModel]:
        full = f"{family}:{name}"
        if not (isinstance(cls, type) and issubclass(cls, TrendModel)):
            raise TypeError(f"register({full}): {cls!r} is not a TrendModel subclass")
        missing = [h for h in REQUIRED_HOOKS if getattr(cls, h) is getattr(TrendModel, h)]
        if missing:
            raise TypeError(f"register({full}): {cls.__name__} does not implement {', '.join(missing)}")
        if name not in model_names():
            raise TypeError(f"register({full}): no params section models.{name}; add a config dataclass to trendfactory.params.ModelsConfig")
        existing = _REGISTRY.get(full)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"register({full}): already registered by {existing.__module__}.{existing.__qualname__}")
        cls.family, cls.name = family, name
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
        out.append(ModelInfo(full, cls.family, cls.name, cls.needs_sequences, cls.can_use_gpu, doc))
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


def get_model_class(name: str) -> type[TrendModel]:
    return _REGISTRY[resolve(name)]


def create(name: str, config: Any = None, *, horizon: int = 5, seed: int = 0, train: Any = None, **overrides: Any) -> TrendModel:
    """A new, unfitted model. ``config``: its ``models.<name>`` section (a dataclass or a
    mapping; defaults when None); ``overrides`` replace single keys, validated like params.yaml;
    ``train``: the shared trainer's section, for models that train through it."""
    cls = get_model_class(name)
    if config is None or isinstance(config, dict):
        config = parse_model_config(cls.name, {**(config or {}), **overrides})
    elif overrides:
        from trendfactory.params import config_to_dict

        config = parse_model_config(cls.name, {**config_to_dict(config), **overrides})
    if cls.uses_trainer:
        return cls(config, horizon=horizon, seed=seed, train=train)
    return cls(config, horizon=horizon, seed=seed)


def train_stage(name: str, horizon: int) -> str:
    """The DVC stage that trains a model at a horizon: train@, train_neural@ or train_joint@."""
    cls = get_model_class(name)
    if cls.joint:  # one fit for every horizon: one stage per model
        return f"{'train_neural' if cls.family == 'neural' else 'train_joint'}@{cls.name}"
    return f"{'train_neural' if cls.uses_trainer else 'train'}@{cls.name}-{int(horizon)}"
