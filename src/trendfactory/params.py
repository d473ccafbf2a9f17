"""The one params loader: `params.yaml` -> typed, validated, frozen config.

Every section is a frozen dataclass. Loading walks the YAML against the dataclasses, so an
unknown key, a wrong type or a bad value fails at once with the key's dotted path, what was
given and what is allowed (e.g. ``label.horizons[1]: got -5, expected an integer >= 1``).
Stages read only their own sections, so DVC's per-stage ``params:`` lists stay honest.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from trendfactory.errors import ParamsError

DEFAULT_PARAMS_PATH = Path("params.yaml")


def _check(predicate, allowed: str) -> dict:
    """Field metadata: a value check and the human description of what is allowed."""
    return {"check": predicate, "allowed": allowed}


def _positive(v) -> bool:
    return v >= 1


def _choice(*options: str) -> dict:
    return _check(lambda v: v in options, "one of " + ", ".join(repr(o) for o in options))


def _pos_field(default, allowed="an integer >= 1"):
    return field(default=default, metadata=_check(_positive, allowed))


def _pos_tuple(default: tuple[int, ...]):
    return field(
        default=default,
        metadata=_check(lambda v: len(v) > 0 and all(x >= 1 for x in v), "a non-empty list of integers >= 1"),
    )


@dataclass(frozen=True)
class SyntheticConfig:
    """Seeded generator of N symbols x T bars (common factor, volatility clustering)."""

    n_symbols: int = _pos_field(20)
    n_bars: int = _pos_field(2000)
    start: str = "2000-01-03"
    freq: str = "B"
    # Strength of a planted predictable component of forward returns (0 = pure random walk).
    signal_strength: float = field(default=0.0, metadata=_check(lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]"))
    ohlcv: bool = True


@dataclass(frozen=True)
class DataConfig:
    source: str = field(default="embedded", metadata=_choice("embedded", "csv", "synthetic"))
    dataset: str = field(default="sp500_large_caps", metadata=_choice("sp500_large_caps", "us_ohlcv"))
    path: str | None = None
    start: str | None = "1990-01-01"
    end: str | None = "2018-12-31"
    context: str = field(default="auto", metadata=_choice("auto", "embedded", "none"))
    context_series: tuple[str, ...] = ("market", "oil", "credit_spread", "core_cpi")
    release_lag_days: dict[str, int] = field(default_factory=lambda: {"credit_spread": 35, "core_cpi": 45})
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass(frozen=True)
class FeaturesConfig:
    device: str = field(default="auto", metadata=_choice("auto", "cpu", "cuda"))
    dtype: str = field(default="auto", metadata=_choice("auto", "float64", "float32"))
    return_lookbacks: tuple[int, ...] = _pos_tuple((1, 5, 20, 60))
    ma_windows: tuple[int, ...] = _pos_tuple((10, 50, 200))
    vol_windows: tuple[int, ...] = _pos_tuple((20, 60))
    rsi_period: int = _pos_field(14)
    rsi_oversold: float = 30.0
    rsi_overbought: float = 70.0
    macd_fast: int = _pos_field(12)
    macd_slow: int = _pos_field(26)
    macd_signal: int = _pos_field(9)
    bb_period: int = _pos_field(20)
    bb_k: float = 2.0
    cci_period: int = _pos_field(20)
    adx_period: int = _pos_field(14)
    atr_period: int = _pos_field(14)
    stoch_k: int = _pos_field(14)
    stoch_smooth: int = _pos_field(3)
    stoch_d: int = _pos_field(3)
    wt_channel: int = _pos_field(10)
    wt_average: int = _pos_field(21)
    wt_signal: int = _pos_field(4)
    wt_oversold: float = -53.0
    wt_overbought: float = 53.0
    volume_z_window: int = _pos_field(20)
    context_lookbacks: tuple[int, ...] = _pos_tuple((5, 20, 60))
    clip: float = field(default=5.0, metadata=_check(lambda v: v > 0, "a number > 0"))


@dataclass(frozen=True)
class LabelConfig:
    horizons: tuple[int, ...] = _pos_tuple((5, 20))
    entry_lag: int = field(default=1, metadata=_check(lambda v: v >= 0, "an integer >= 0"))
    barrier_k: float = field(default=0.75, metadata=_check(lambda v: v > 0, "a number > 0"))
    vol_span: int = field(default=50, metadata=_check(lambda v: v >= 2, "an integer >= 2"))


@dataclass(frozen=True)
class SplitConfig:
    # walk_forward: yearly-ish test blocks from test_start to the end of the data, each fold
    # retrained on everything before it; fixed: one train / val / test split (train_end, val_end).
    scheme: str = field(default="walk_forward", metadata=_choice("walk_forward", "fixed"))
    test_start: str = "2007-01-01"  # walk_forward: first day of the first test block
    fold: int = _pos_field(4, "an integer >= 1 (years per test block)")  # walk_forward: test block length, years
    val_years: int = _pos_field(2, "an integer >= 1 (years)")  # walk_forward: validation block just before each test block
    train_years: int | None = field(default=None, metadata=_check(_positive, "null (expanding) or an integer >= 1 (years)"))
    train_end: str = "2010-12-31"  # fixed: last date of train
    val_end: str = "2014-12-31"  # fixed: last date of validation; test is everything after
    embargo: int = field(default=10, metadata=_check(lambda v: v >= 0, "an integer >= 0"))


@dataclass(frozen=True)
class WindowConfig:
    seq_len: int = _pos_field(30)


# --------------------------------------------------------------------------------------------
# Models: one section per registered model (`models.<name>`), read only by that model's stages.

_LAGS_CHECK = _check(lambda v: all(x >= 1 for x in v), "a list of integers >= 1")
_CLASS_WEIGHT = _choice("none", "balanced")
_DEVICE = _choice("auto", "cpu", "cuda")
_FRACTION = _check(lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
_POSITIVE = _check(lambda v: v > 0, "a number > 0")
_NON_NEGATIVE = _check(lambda v: v >= 0, "a number >= 0")


@dataclass(frozen=True)
class MajorityConfig:
    """Always the train split's most frequent class, with the train class prior."""


@dataclass(frozen=True)
class MomentumConfig:
    # Trailing-return lookback in bars (a features.return_lookbacks value); null: the one
    # closest to the horizon.
    lookback: int | None = field(default=None, metadata=_check(_positive, "an integer >= 1 or null"))
    # Neutral band on the trailing log return; null: fitted on train so that the share of
    # neutral calls equals the train share of flat labels.
    band: float | None = field(default=None, metadata=_NON_NEGATIVE)


@dataclass(frozen=True)
class LogisticConfig:
    C: float = field(default=0.05, metadata=_POSITIVE)
    max_iter: int = _pos_field(300)
    class_weight: str = field(default="none", metadata=_CLASS_WEIGHT)
    lags: tuple[int, ...] = field(default=(), metadata=_LAGS_CHECK)


@dataclass(frozen=True)
class RandomForestConfig:
    n_estimators: int = _pos_field(60)
    max_depth: int = _pos_field(8)
    min_samples_leaf: int = _pos_field(100)
    max_features: float = field(default=0.3, metadata=_FRACTION)
    max_samples: float = field(default=0.5, metadata=_FRACTION)
    class_weight: str = field(default="none", metadata=_CLASS_WEIGHT)
    n_jobs: int = _pos_field(2)
    lags: tuple[int, ...] = field(default=(), metadata=_LAGS_CHECK)


@dataclass(frozen=True)
class BoostingConfig:
    """The keys every boosting section has (each adds its own library's)."""

    early_stopping_rounds: int = _pos_field(50)
    class_weight: str = field(default="none", metadata=_CLASS_WEIGHT)
    device: str = field(default="auto", metadata=_DEVICE)
    n_jobs: int = _pos_field(2)
    lags: tuple[int, ...] = field(default=(), metadata=_LAGS_CHECK)


@dataclass(frozen=True)
class XGBoostConfig(BoostingConfig):
    n_estimators: int = _pos_field(1000)
    learning_rate: float = field(default=0.03, metadata=_POSITIVE)
    max_depth: int = _pos_field(4)
    min_child_weight: float = field(default=20.0, metadata=_NON_NEGATIVE)
    subsample: float = field(default=0.8, metadata=_FRACTION)
    colsample_bytree: float = field(default=0.8, metadata=_FRACTION)
    reg_lambda: float = field(default=1.0, metadata=_NON_NEGATIVE)


@dataclass(frozen=True)
class LightGBMConfig(BoostingConfig):
    n_estimators: int = _pos_field(1000)
    learning_rate: float = field(default=0.03, metadata=_POSITIVE)
    num_leaves: int = field(default=15, metadata=_check(lambda v: v >= 2, "an integer >= 2"))
    min_child_samples: int = _pos_field(200)
    subsample: float = field(default=0.8, metadata=_FRACTION)
    colsample_bytree: float = field(default=0.8, metadata=_FRACTION)
    reg_lambda: float = field(default=1.0, metadata=_NON_NEGATIVE)


@dataclass(frozen=True)
class CatBoostConfig(BoostingConfig):
    iterations: int = _pos_field(1000)
    learning_rate: float = field(default=0.05, metadata=_POSITIVE)
    depth: int = field(default=6, metadata=_check(lambda v: 1 <= v <= 16, "an integer in 1..16"))
    l2_leaf_reg: float = field(default=3.0, metadata=_NON_NEGATIVE)


# ---- neural models: architecture sizes only; how they train is the shared `train` section ----

_DROPOUT = _check(lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_POS_LIST = _check(lambda v: len(v) > 0 and all(x >= 1 for x in v), "a non-empty list of integers >= 1")


@dataclass(frozen=True)
class NeuralConfig:
    """Base of every neural model's section: such models train through the `train` section."""


@dataclass(frozen=True)
class MLPConfig(NeuralConfig):
    hidden: tuple[int, ...] = field(default=(256, 128), metadata=_POS_LIST)
    dropout: float = field(default=0.2, metadata=_DROPOUT)
    lags: tuple[int, ...] = field(default=(1, 5), metadata=_LAGS_CHECK)


@dataclass(frozen=True)
class RNNConfig(NeuralConfig):
    hidden: int = _pos_field(64)
    layers: int = _pos_field(1)
    dropout: float = field(default=0.1, metadata=_DROPOUT)


@dataclass(frozen=True)
class LSTMConfig(RNNConfig):
    pass


@dataclass(frozen=True)
class GRUConfig(RNNConfig):
    pass


@dataclass(frozen=True)
class TCNConfig(NeuralConfig):
    channels: int = _pos_field(32)
    kernel_size: int = field(default=3, metadata=_check(lambda v: v >= 2, "an integer >= 2"))
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8), metadata=_POS_LIST)
    dropout: float = field(default=0.1, metadata=_DROPOUT)


@dataclass(frozen=True)
class TransformerConfig(NeuralConfig):
    d_model: int = _pos_field(32)
    heads: int = _pos_field(4)
    layers: int = _pos_field(2)
    ff: int = _pos_field(64)
    patch_len: int = _pos_field(5)  # bars per token; 1 = one token per bar
    dropout: float = field(default=0.1, metadata=_DROPOUT)


@dataclass(frozen=True)
class NHITSConfig(NeuralConfig):
    pool_sizes: tuple[int, ...] = field(default=(8, 4, 1), metadata=_POS_LIST)  # one block per rate
    hidden: int = _pos_field(128)
    dropout: float = field(default=0.1, metadata=_DROPOUT)


@dataclass(frozen=True)
class HybridConfig(NeuralConfig):
    conv_channels: int = _pos_field(32)
    kernel_size: int = field(default=3, metadata=_check(lambda v: v >= 1, "an integer >= 1"))
    lstm_hidden: int = _pos_field(64)
    heads: int = _pos_field(4)
    head_hidden: int = _pos_field(64)
    dropout: float = field(default=0.1, metadata=_DROPOUT)


@dataclass(frozen=True)
class JointConfig(NeuralConfig):
    """Base of the sections of models trained once for every horizon jointly (run.joint_models)."""


@dataclass(frozen=True)
class DualTowerConfig(JointConfig):
    # context tower over the ctx_* features and stock tower over the stk_* features:
    # Linear + BatchNorm + ReLU + Dropout per hidden layer, then a linear embedding
    context_hidden: tuple[int, ...] = field(default=(128, 64), metadata=_POS_LIST)
    context_embedding: int = _pos_field(32)
    context_dropout: float = field(default=0.2, metadata=_DROPOUT)
    stock_hidden: tuple[int, ...] = field(default=(256, 128), metadata=_POS_LIST)
    stock_embedding: int = _pos_field(64)
    stock_dropout: float = field(default=0.3, metadata=_DROPOUT)
    # what each horizon's head sees: both = [context, projected stock, their product];
    # context = the context embedding only (an ablation: no stock-specific information)
    heads_see: str = field(default="both", metadata=_choice("both", "context"))
    head_hidden: int = _pos_field(64)
    alpha: float = field(default=1.0, metadata=_NON_NEGATIVE)  # weight of each head's score MSE
    beta: float = field(default=0.5, metadata=_NON_NEGATIVE)  # weight of each head's class CE
    gamma: float = field(default=0.01, metadata=_NON_NEGATIVE)  # orthogonality + magnitude penalty
    lr_context: float = field(default=1.0, metadata=_POSITIVE)  # x train.lr
    lr_stock: float = field(default=0.5, metadata=_POSITIVE)
    lr_heads: float = field(default=1.0, metadata=_POSITIVE)
    sample_weight: str = field(default="none", metadata=_choice("none", "balanced"))
    joint: bool = True  # one network for every horizon; false: one network per horizon (ablation)


@dataclass(frozen=True)
class ModelsConfig:
    majority: MajorityConfig = field(default_factory=MajorityConfig)
    momentum: MomentumConfig = field(default_factory=MomentumConfig)
    logistic: LogisticConfig = field(default_factory=LogisticConfig)
    random_forest: RandomForestConfig = field(default_factory=RandomForestConfig)
    xgboost: XGBoostConfig = field(default_factory=XGBoostConfig)
    lightgbm: LightGBMConfig = field(default_factory=LightGBMConfig)
    catboost: CatBoostConfig = field(default_factory=CatBoostConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    lstm: LSTMConfig = field(default_factory=LSTMConfig)
    gru: GRUConfig = field(default_factory=GRUConfig)
    tcn: TCNConfig = field(default_factory=TCNConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    nhits: NHITSConfig = field(default_factory=NHITSConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    dual_tower: DualTowerConfig = field(default_factory=DualTowerConfig)


def model_names() -> tuple[str, ...]:
    """Every model with a params section (the registry holds exactly these)."""
    return tuple(f.name for f in dataclasses.fields(ModelsConfig))


def _sections_of(kind: type) -> tuple[str, ...]:
    hints = typing.get_type_hints(ModelsConfig)
    return tuple(n for n in model_names() if issubclass(hints[n], kind))


def neural_model_names() -> tuple[str, ...]:
    """Per-horizon models that train through the shared `train` section (run.neural_models)."""
    joint = joint_model_names()
    return tuple(n for n in _sections_of(NeuralConfig) if n not in joint)


def joint_model_names() -> tuple[str, ...]:
    """Models trained once for every horizon jointly (run.joint_models); they read `train` too."""
    return _sections_of(JointConfig)


@dataclass(frozen=True)
class TrainConfig:
    """The shared torch trainer (neural models only)."""

    lr: float = field(default=1e-3, metadata=_POSITIVE)
    batch_size: int = _pos_field(512)
    max_epochs: int = _pos_field(20)
    patience: int = _pos_field(1)
    # what early stopping and the kept checkpoint follow: validation log loss, or the validation
    # daily Rank IC of the score (what the comparison ranks models by)
    monitor: str = field(default="loss", metadata=_choice("loss", "rank_ic"))
    min_delta: float = field(default=1e-4, metadata=_NON_NEGATIVE)
    scheduler: str = field(default="cosine", metadata=_choice("cosine", "plateau"))
    warmup_epochs: float = field(default=1.0, metadata=_NON_NEGATIVE)
    weight_decay: float = field(default=1e-2, metadata=_NON_NEGATIVE)
    max_grad_norm: float = field(default=1.0, metadata=_NON_NEGATIVE)
    keep_best: int = _pos_field(2)
    class_weight: str = field(default="none", metadata=_CLASS_WEIGHT)
    aux_weight: float = field(default=0.0, metadata=_NON_NEGATIVE)
    device: str = field(default="auto", metadata=_DEVICE)
    precision: str = field(default="auto", metadata=_choice("auto", "fp32", "bf16", "fp16"))
    eval_batch_size: int = _pos_field(4096)
    resume: bool = True
    # processes fitting a network's folds x seeds side by side on the CPU (null: one per CPU core;
    # on CUDA they run one after another); each uses one torch thread, so results do not depend on it
    workers: int | None = field(default=None, metadata=_check(_positive, "null (one per CPU core) or an integer >= 1"))


@dataclass(frozen=True)
class RunConfig:
    # Models trained and evaluated at every horizon (the train/evaluate matrix).
    models: tuple[str, ...] = ("majority", "momentum", "logistic", "random_forest", "xgboost", "lightgbm", "catboost")
    # Neural models: their own matrix (train_neural/evaluate_neural), whose stages also read `train`.
    neural_models: tuple[str, ...] = ("mlp", "lstm", "gru", "tcn", "transformer", "nhits", "hybrid")
    # Joint multi-horizon models: one training for every horizon (train_joint), evaluated per horizon.
    joint_models: tuple[str, ...] = ("dual_tower",)


@dataclass(frozen=True)
class EvaluateConfig:
    # Trading cost in basis points per unit of one-way turnover of the long/short book.
    cost_bps: float = field(default=5.0, metadata=_NON_NEGATIVE)
    # Bars per year, for annualising Sharpe and returns (252 for daily US equities).
    bars_per_year: float = field(default=252.0, metadata=_POSITIVE)
    # Resamples of the comparison's block bootstraps (intervals, SPA test, model confidence set).
    bootstrap_reps: int = field(default=1000, metadata=_check(lambda v: v >= 100, "an integer >= 100"))
    # Seeds each stochastic model is fitted with in every fold (metrics: mean and spread over seeds).
    seeds: int = _pos_field(2)


@dataclass(frozen=True)
class EnsembleConfig:
    # rank_avg: the models with the best Rank IC on each fold's validation block, averaged
    top_k: int = _pos_field(3)
    # stack: L2 strength of the ridge meta-learner on the models' score ranks
    ridge_alpha: float = field(default=1.0, metadata=_POSITIVE)


@dataclass(frozen=True)
class Params:
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    run: RunConfig = field(default_factory=RunConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)


# --------------------------------------------------------------------------------------------
# Generic YAML -> dataclass conversion with dotted-path errors


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list (each item {_type_name(typing.get_args(tp)[0])})"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping of {_type_name(k)} to {_type_name(v)}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false", type(None): "null"}.get(tp, str(tp))


def _convert(value: Any, tp, path: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ParamsError(f"{path}: got {value!r}, expected a mapping of {tp.__name__} keys")
        return _build(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ParamsError:
                continue
        raise ParamsError(f"{path}: got {value!r}, expected {_type_name(tp)}")
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{path}: got {value!r}, expected {_type_name(tp)}")
        return tuple(_convert(v, inner, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ParamsError(f"{path}: got {value!r}, expected {_type_name(tp)}")
        return {_convert(k, kt, f"{path}.{k}"): _convert(v, vt, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{path}: got {value!r}, expected true/false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{path}: got {value!r}, expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{path}: got {value!r}, expected a number")
        return float(value)
    if tp is str:
        # YAML turns an unquoted 2010-12-31 into a date; accept it and keep ISO text.
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        if not isinstance(value, str):
            raise ParamsError(f"{path}: got {value!r}, expected a string")
        return value
    raise ParamsError(f"{path}: unsupported type {tp!r}")  # pragma: no cover - programming error


def _build(cls, raw: Mapping, prefix: str):
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise ParamsError(f"{where}: unknown key; allowed keys here: {', '.join(sorted(names))}")
    kwargs = {}
    for name, f in names.items():
        if name not in raw:
            continue
        path = f"{prefix}.{name}" if prefix else name
        value = _convert(raw[name], hints[name], path)
        check = f.metadata.get("check")
        if check is not None and value is not None and not check(value):
            raise ParamsError(f"{path}: got {raw[name]!r}, expected {f.metadata['allowed']}")
        kwargs[name] = value
    return cls(**kwargs)


def _parse_date(text: str | None, path: str) -> _dt.date | None:
    if text is None:
        return None
    try:
        return _dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        raise ParamsError(f"{path}: got {text!r}, expected a date like 2010-12-31") from None


def _validate_cross_fields(p: Params) -> None:
    """Checks that involve more than one key."""
    d = p.data
    if d.source == "csv" and not d.path:
        raise ParamsError("data.path: missing; data.source 'csv' needs a path to a CSV/Parquet file or a directory of them")
    if d.source == "csv" and d.path and not Path(d.path).exists():
        raise ParamsError(f"data.path: {d.path!r} does not exist; point it at a CSV/Parquet file or a directory of per-symbol files")
    start, end = _parse_date(d.start, "data.start"), _parse_date(d.end, "data.end")
    if start and end and start >= end:
        raise ParamsError(f"data.start: {d.start} is not before data.end {d.end}")
    allowed_series = ("market", "oil", "credit_spread", "core_cpi", "vix")
    for i, s in enumerate(d.context_series):
        if s not in allowed_series:
            raise ParamsError(f"data.context_series[{i}]: got {s!r}, expected one of {', '.join(allowed_series)}")
    for k, v in d.release_lag_days.items():
        if k not in allowed_series:
            raise ParamsError(f"data.release_lag_days.{k}: unknown series; expected one of {', '.join(allowed_series)}")
        if v < 0:
            raise ParamsError(f"data.release_lag_days.{k}: got {v}, expected an integer >= 0")
    _parse_date(d.synthetic.start, "data.synthetic.start")

    te = _parse_date(p.split.train_end, "split.train_end")
    ve = _parse_date(p.split.val_end, "split.val_end")
    _parse_date(p.split.test_start, "split.test_start")
    if te >= ve:
        raise ParamsError(f"split.train_end: {p.split.train_end} is not before split.val_end {p.split.val_end}; train must end before validation ends")

    if len(set(p.label.horizons)) != len(p.label.horizons):
        raise ParamsError(f"label.horizons: got {list(p.label.horizons)}, expected distinct values")
    f = p.features
    if f.macd_fast >= f.macd_slow:
        raise ParamsError(f"features.macd_fast: got {f.macd_fast}, expected less than features.macd_slow ({f.macd_slow})")
    if f.rsi_oversold >= f.rsi_overbought:
        raise ParamsError("features.rsi_oversold: must be below features.rsi_overbought")
    neural, joint = neural_model_names(), joint_model_names()
    tabular = tuple(n for n in model_names() if n not in neural and n not in joint)
    lists = {"models": (p.run.models, tabular), "neural_models": (p.run.neural_models, neural), "joint_models": (p.run.joint_models, joint)}
    if not any(names for names, _ in lists.values()):
        raise ParamsError("run.models: got [] and run.neural_models and run.joint_models are empty too; list at least one model")
    for key, (names, allowed) in lists.items():
        for i, name in enumerate(names):
            if name not in allowed:
                home = next((k for k, (_, a) in lists.items() if name in a), None)
                hint = f"; {name!r} belongs under run.{home}" if home else ""
                raise ParamsError(f"run.{key}[{i}]: got {name!r}, expected one of {', '.join(allowed)}{hint}")
        if len(set(names)) != len(names):
            raise ParamsError(f"run.{key}: got {list(names)}, expected distinct names")
    for name in model_names():
        lags = getattr(getattr(p.models, name), "lags", ())
        for i, lag in enumerate(lags):
            if lag >= p.window.seq_len:
                raise ParamsError(
                    f"models.{name}.lags[{i}]: got {lag}, expected less than window.seq_len ({p.window.seq_len}) "
                    "so the lagged row stays inside the window"
                )


def parse_params(raw: Mapping | None) -> Params:
    """Typed, validated Params from a parsed YAML mapping (None = all defaults)."""
    params = _build(Params, raw or {}, "")
    _validate_cross_fields(params)
    return params


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> Params:
    """Read and validate a params.yaml; errors name the file and the dotted key."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if raw is not None and not isinstance(raw, Mapping):
        raise ParamsError(f"{path}: expected a mapping of sections at top level, got {type(raw).__name__}")
    try:
        return parse_params(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def parse_model_config(name: str, raw: Mapping | None):
    """The typed config of one model from a mapping (e.g. a saved model's metadata)."""
    if name not in model_names():
        raise ParamsError(f"models.{name}: unknown model; expected one of {', '.join(model_names())}")
    cls = typing.get_type_hints(ModelsConfig)[name]
    return _build(cls, raw or {}, f"models.{name}")


def config_to_dict(config) -> dict:
    """A config dataclass as plain JSON-able data (tuples become lists)."""
    def plain(v):
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def split_dates(p: Params) -> tuple[_dt.date, _dt.date]:
    """(train_end, val_end) as dates."""
    return _parse_date(p.split.train_end, "split.train_end"), _parse_date(p.split.val_end, "split.val_end")
