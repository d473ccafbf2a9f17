"""The one params loader: `params.yaml` -> typed, validated, frozen config.

Every section is a frozen dataclass. Loading walks the YAML against the dataclasses, so an
unknown key, a wrong type or a bad value fails at once with the key's dotted path, what was
given and what is allowed (e.g. ``label.horizons[1]: got -5, expected an integer >= 1``).
Stages read only their own sections, so DVC's per-stage ``params:`` lists stay honest.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from trendfactory.errors import ParamsError

DEFAULT_PARAMS_PATH = Path("params.yaml")
MAX_SEED = 2**32 - 1  # numpy's and torch's seed range; fit k of a fold uses seed + k


def check(predicate, allowed: str) -> dict:
    """Field metadata: a value check and the human description of what is allowed."""
    return {"check": predicate, "allowed": allowed}


def _positive(v) -> bool:
    return v >= 1


def choice(*options: str) -> dict:
    return check(lambda v: v in options, "one of " + ", ".join(repr(o) for o in options))


def _is_timezone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def pos_field(default, allowed="an integer >= 1"):
    return field(default=default, metadata=check(_positive, allowed))


def pos_tuple(default: tuple[int, ...]):
    return field(
        default=default,
        metadata=check(lambda v: len(v) > 0 and all(x >= 1 for x in v), "a non-empty list of integers >= 1"),
    )


@dataclass(frozen=True)
class SyntheticConfig:
    """Seeded generator of N symbols x T bars (common factor, volatility clustering)."""

    n_symbols: int = pos_field(20)
    n_bars: int = pos_field(2000)
    start: str = "2000-01-03"
    freq: str = "B"
    # Strength of a planted predictable component of forward returns (0 = pure random walk).
    signal_strength: float = field(default=0.0, metadata=check(lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]"))
    ohlcv: bool = True


@dataclass(frozen=True)
class DataConfig:
    source: str = field(default="embedded", metadata=choice("embedded", "csv", "synthetic"))
    dataset: str = field(default="sp500_large_caps", metadata=choice("sp500_large_caps", "us_ohlcv"))
    path: str | None = None
    start: str | None = "1990-01-01"
    end: str | None = "2018-12-31"
    context: str = field(default="auto", metadata=choice("auto", "embedded", "none"))
    context_series: tuple[str, ...] = ("market", "oil", "credit_spread", "core_cpi")
    release_lag_days: dict[str, int] = field(default_factory=lambda: {"credit_spread": 35, "core_cpi": 45})
    # time stamps carrying a UTC offset (e.g. 2014-01-02 00:00:00-05:00) are converted to this
    # zone, then stored without it; stamps without an offset are taken as already in it
    timezone: str = field(default="UTC", metadata=check(lambda v: _is_timezone(v), "an IANA time zone name such as 'UTC' or 'America/New_York'"))
    # a symbol with too few bars for the features' warm-up: drop it with a warning naming its file, or stop
    min_history: str = field(default="drop", metadata=choice("drop", "error"))
    # a one-bar move larger than this price ratio (up or down), with no move of half its size in
    # the universe's median that day, looks like an unadjusted split: warn (name symbol, date, size) or stop
    on_jump: str = field(default="warn", metadata=choice("warn", "error"))
    jump_ratio: float = field(default=3.0, metadata=check(lambda v: v > 1.0, "a number > 1 (a price ratio: 3 flags x3 or /3 in one bar)"))
    # symbols held in memory at once by ingest and featurize (peak memory follows the chunk, not
    # the universe); the outputs depend on it only in the last bits of merged statistics
    chunk_symbols: int = pos_field(250)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass(frozen=True)
class FeaturesConfig:
    device: str = field(default="auto", metadata=choice("auto", "cpu", "cuda"))
    dtype: str = field(default="auto", metadata=choice("auto", "float64", "float32"))
    return_lookbacks: tuple[int, ...] = pos_tuple((1, 5, 20, 60))
    ma_windows: tuple[int, ...] = pos_tuple((10, 50, 200))
    vol_windows: tuple[int, ...] = pos_tuple((20, 60))
    rsi_period: int = pos_field(14)
    rsi_oversold: float = field(default=30.0, metadata=check(lambda v: 0 <= v <= 100, "a number in [0, 100] (RSI level)"))
    rsi_overbought: float = field(default=70.0, metadata=check(lambda v: 0 <= v <= 100, "a number in [0, 100] (RSI level)"))
    macd_fast: int = pos_field(12)
    macd_slow: int = pos_field(26)
    macd_signal: int = pos_field(9)
    bb_period: int = pos_field(20)
    bb_k: float = field(default=2.0, metadata=check(lambda v: v > 0, "a number > 0 (band width in standard deviations)"))
    cci_period: int = pos_field(20)
    adx_period: int = pos_field(14)
    atr_period: int = pos_field(14)
    stoch_k: int = pos_field(14)
    stoch_smooth: int = pos_field(3)
    stoch_d: int = pos_field(3)
    wt_channel: int = pos_field(10)
    wt_average: int = pos_field(21)
    wt_signal: int = pos_field(4)
    wt_oversold: float = -53.0
    wt_overbought: float = 53.0
    volume_z_window: int = pos_field(20)
    context_lookbacks: tuple[int, ...] = pos_tuple((5, 20, 60))
    clip: float = field(default=5.0, metadata=check(lambda v: v > 0, "a number > 0"))


@dataclass(frozen=True)
class LabelConfig:
    horizons: tuple[int, ...] = pos_tuple((5, 20))
    entry_lag: int = field(default=1, metadata=check(lambda v: v >= 0, "an integer >= 0"))
    barrier_k: float = field(default=0.75, metadata=check(lambda v: v > 0, "a number > 0"))
    vol_span: int = field(default=50, metadata=check(lambda v: v >= 2, "an integer >= 2"))


@dataclass(frozen=True)
class SplitConfig:
    # walk_forward: yearly-ish test blocks from test_start to the end of the data, each fold
    # retrained on everything before it; fixed: one train / val / test split (train_end, val_end).
    scheme: str = field(default="walk_forward", metadata=choice("walk_forward", "fixed"))
    test_start: str = "2007-01-01"  # walk_forward: first day of the first test block
    fold: int = pos_field(4, "an integer >= 1 (years per test block)")  # walk_forward: test block length, years
    val_years: int = pos_field(2, "an integer >= 1 (years)")  # walk_forward: validation block just before each test block
    train_years: int | None = field(default=None, metadata=check(_positive, "null (expanding) or an integer >= 1 (years)"))
    train_end: str = "2010-12-31"  # fixed: last date of train
    val_end: str = "2014-12-31"  # fixed: last date of validation; test is everything after
    embargo: int = field(default=10, metadata=check(lambda v: v >= 0, "an integer >= 0"))


@dataclass(frozen=True)
class WindowConfig:
    seq_len: int = pos_field(30)


# --------------------------------------------------------------------------------------------
# Models. Each model declares its own config dataclass beside it (models/zoo/<name>.py, with the
# field helpers below); `models.<name>` is validated against it when a stage first reads it
# (models.registry.model_config), which imports only that model's file (so a tabular stage never
# imports torch).

LAGS = check(lambda v: all(x >= 1 for x in v), "a list of integers >= 1")
CLASS_WEIGHT = choice("none", "balanced")
DEVICE = choice("auto", "cpu", "cuda")
FRACTION = check(lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
POSITIVE = check(lambda v: v > 0, "a number > 0")
NON_NEGATIVE = check(lambda v: v >= 0, "a number >= 0")
DROPOUT = check(lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
POS_LIST = check(lambda v: len(v) > 0 and all(x >= 1 for x in v), "a non-empty list of integers >= 1")

ZOO_DIR = Path(__file__).parent / "models" / "zoo"


def model_names() -> tuple[str, ...]:
    """Every model there is: the files in models/zoo/ (listed without importing them)."""
    return tuple(sorted(f.stem for f in ZOO_DIR.glob("*.py") if not f.stem.startswith("_")))


class ModelSections:
    """The `models` section: each ``models.<name>`` as written, and its typed config once parsed.

    Parsing needs the config class the model declares in its own file, which is the models
    package's business, not this module's (it imports nothing of the project):
    ``trendfactory.models.registry.model_config(params, name)`` validates the section -- unknown
    keys, types, allowed values, lags inside ``window.seq_len`` -- raising :class:`ParamsError`
    with the dotted key, and keeps the result here (``typed``). A model without a section gets
    its defaults.
    """

    def __init__(self, raw: Mapping[str, Mapping] | None = None, seq_len: int | None = None) -> None:
        self._raw = {k: dict(v or {}) for k, v in (raw or {}).items()}
        self._seq_len = seq_len
        self._typed: dict[str, Any] = {}

    def typed(self, name: str, parse: Callable[[str, dict, int | None], Any]) -> Any:
        """``parse(name, section, window.seq_len)``, computed once per model."""
        if name not in self._typed:
            self._typed[name] = parse(name, self._raw.get(name, {}), self._seq_len)
        return self._typed[name]

    def names(self) -> list[str]:
        """The models with a section in params.yaml."""
        return sorted(self._raw)

    def raw(self, name: str) -> dict:
        """The section as written in params.yaml (empty when absent)."""
        return dict(self._raw.get(name, {}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSections) and (self._raw, self._seq_len) == (other._raw, other._seq_len)

    def __hash__(self) -> int:
        return hash(repr(sorted(self._raw.items())))

    def __repr__(self) -> str:
        return f"ModelSections({sorted(self._raw)})"


def _check_model_sections(raw: Any) -> dict:
    """`models` must map known model names to mappings (their keys are checked on first read)."""
    if raw is None:
        return {}
    if isinstance(raw, ModelSections):  # e.g. dataclasses.replace'd params passed back in
        return {name: raw.raw(name) for name in raw.names()}
    if not isinstance(raw, Mapping):
        raise ParamsError(f"models: got {raw!r}, expected a mapping of model name to its section")
    known = model_names()
    for name, section in raw.items():
        if name not in known:
            raise ParamsError(f"models.{name}: unknown model; expected one of {', '.join(known)} (a model is a file in models/zoo/)")
        if section is not None and not isinstance(section, Mapping):
            raise ParamsError(f"models.{name}: got {section!r}, expected a mapping of its keys")
    return dict(raw)


@dataclass(frozen=True)
class TrainConfig:
    """The shared torch trainer (neural models only)."""

    lr: float = field(default=1e-3, metadata=POSITIVE)
    batch_size: int = pos_field(512)
    # train samples drawn (a fresh random subset) per epoch; null: all of them. Caps an epoch's
    # cost on a large universe (the windows are read from the memory-mapped store either way)
    samples_per_epoch: int | None = field(default=None, metadata=check(_positive, "null (every train sample) or an integer >= 1"))
    max_epochs: int = pos_field(20)
    patience: int = pos_field(1)
    # what early stopping and the kept checkpoint follow: validation log loss, or the validation
    # daily Rank IC of the score (what the comparison ranks models by)
    monitor: str = field(default="loss", metadata=choice("loss", "rank_ic"))
    min_delta: float = field(default=1e-4, metadata=NON_NEGATIVE)
    scheduler: str = field(default="cosine", metadata=choice("cosine", "plateau"))
    warmup_epochs: float = field(default=1.0, metadata=NON_NEGATIVE)
    weight_decay: float = field(default=1e-2, metadata=NON_NEGATIVE)
    max_grad_norm: float = field(default=1.0, metadata=NON_NEGATIVE)
    keep_best: int = pos_field(2)
    class_weight: str = field(default="none", metadata=CLASS_WEIGHT)
    aux_weight: float = field(default=0.0, metadata=NON_NEGATIVE)
    device: str = field(default="auto", metadata=DEVICE)
    precision: str = field(default="auto", metadata=choice("auto", "fp32", "tf32", "bf16", "fp16"))
    eval_batch_size: int = pos_field(4096)
    resume: bool = True


@dataclass(frozen=True)
class ParallelConfig:
    """Where a stage's independent fits run (trendfactory.parallel); never what they give."""

    # null: $RAY_ADDRESS when set, else a local Ray started on demand | local | a cluster address
    address: str | None = None
    # CPUs a local Ray may use (null: every core; 1: every fit in the stage's own process)
    cpus: int | None = field(default=None, metadata=check(_positive, "null (every core) or an integer >= 1"))
    # network fits sharing one GPU at a time (Ray tasks of 1/n GPU each; 1 with one GPU: one
    # after another in the stage's process)
    fits_per_gpu: int = pos_field(1)


@dataclass(frozen=True)
class RunConfig:
    # Models trained and evaluated at every horizon (the train/evaluate matrix).
    models: tuple[str, ...] = ("majority", "momentum", "logistic", "random_forest", "xgboost", "lightgbm", "catboost")
    # Neural models: their own matrix (train_neural/evaluate_neural), whose stages also read `train`.
    neural_models: tuple[str, ...] = ("mlp", "lstm", "gru", "tcn", "transformer", "nhits", "hybrid")
    # Joint multi-horizon models: one training for every horizon (train_joint), evaluated per horizon.
    joint_models: tuple[str, ...] = ("dual_tower",)
    # Models given an Optuna study per horizon (tune@<m>-<h>) and trained again with its best
    # params as <m>_tuned, compared beside the default (each must also be in its run list).
    tune: tuple[str, ...] = ()


@dataclass(frozen=True)
class TuneConfig:
    """Optuna studies of run.tune (trendfactory.tuning). The objective is the pooled validation
    Rank IC of the walk-forward folds (never test)."""

    trials: int = pos_field(50)  # finished trials (complete, pruned or failed) per study
    # null: a journal file .tuning/<m>-h<h>.journal (resumable; one machine or a shared disk) |
    # any Optuna storage URL (sqlite:///tuning.db, postgresql://user@host/db) for many machines
    storage: str | None = None
    # median: stop a trial after a fold when its running pooled Rank IC is below the median of
    # earlier trials at that fold | none
    pruner: str = field(default="median", metadata=choice("median", "none"))
    startup_trials: int = pos_field(5)  # trials sampled at random (and never pruned) before TPE


@dataclass(frozen=True)
class EvaluateConfig:
    # Trading cost in basis points per unit of one-way turnover of the long/short book.
    cost_bps: float = field(default=5.0, metadata=NON_NEGATIVE)
    # Bars per year, for annualising Sharpe and returns (252 for daily US equities).
    bars_per_year: float = field(default=252.0, metadata=POSITIVE)
    # Resamples of the comparison's block bootstraps (intervals, SPA test, model confidence set).
    bootstrap_reps: int = field(default=1000, metadata=check(lambda v: v >= 100, "an integer >= 100"))
    # Seeds each stochastic model is fitted with in every fold (metrics: mean and spread over seeds).
    seeds: int = pos_field(2)


@dataclass(frozen=True)
class EnsembleConfig:
    # rank_avg: the models with the best Rank IC on each fold's validation block, averaged
    top_k: int = pos_field(3)
    # stack: L2 strength of the ridge meta-learner on the models' score ranks
    ridge_alpha: float = field(default=1.0, metadata=POSITIVE)


@dataclass(frozen=True)
class Params:
    seed: int = field(default=42, metadata=check(lambda v: 0 <= v <= MAX_SEED, f"an integer in 0 .. {MAX_SEED} (numpy's seed range)"))
    # portable: the same bytes on every x86-64 CPU with AVX2 (trendfactory.numerics) | native
    numerics: str = field(default="portable", metadata=choice("portable", "native"))
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    run: RunConfig = field(default_factory=RunConfig)
    models: ModelSections = field(default_factory=ModelSections)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)


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
        return build_config(tp, value, path)
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
        if not math.isfinite(value):  # YAML's .nan / .inf: a NaN learning rate trains NaN networks
            raise ParamsError(f"{path}: got {value!r}, expected a finite number")
        return float(value)
    if tp is str:
        # YAML turns an unquoted 2010-12-31 into a date; accept it and keep ISO text.
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        if not isinstance(value, str):
            raise ParamsError(f"{path}: got {value!r}, expected a string")
        return value
    raise ParamsError(f"{path}: unsupported type {tp!r}")  # pragma: no cover - programming error


def build_config(cls, raw: Mapping, prefix: str):
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


def _check_frequency(freq: str, path: str) -> None:
    """A pandas frequency string (B, D, h, 5min, ...)."""
    import pandas as pd  # only here: params.py is imported by every stage and pandas is slow to import

    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise ParamsError(f"{path}: got {freq!r}, expected a pandas frequency such as B (business days), D, h or 5min") from None


def _check_window_fits(p: Params) -> None:
    """``window.seq_len`` must leave windows in the data: a window longer than every symbol's
    history gives an empty window store, which only training would notice. Before ingest the
    data length is known for the synthetic source (``n_bars``) and bounded for a dated range
    (``evaluate.bars_per_year`` bars a year); the window stage checks the real lengths."""
    seq_len = p.window.seq_len
    if p.data.source == "synthetic":
        bars, what = p.data.synthetic.n_bars, f"data.synthetic.n_bars ({p.data.synthetic.n_bars})"
    else:
        start, end = _parse_date(p.data.start, "data.start"), _parse_date(p.data.end, "data.end")
        if not (start and end):
            return
        bars = math.ceil((end - start).days / 365.25 * p.evaluate.bars_per_year) + 1
        what = f"the ~{bars:,} bars from data.start {p.data.start} to data.end {p.data.end} at evaluate.bars_per_year {p.evaluate.bars_per_year:g}"
    if seq_len >= bars:
        raise ParamsError(f"window.seq_len: got {seq_len}, longer than {what}; expected a window well inside the data")


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
    _check_frequency(d.synthetic.freq, "data.synthetic.freq")
    if p.seed + p.evaluate.seeds - 1 > MAX_SEED:
        raise ParamsError(f"seed: got {p.seed}; with evaluate.seeds {p.evaluate.seeds} the fits use seeds up to {p.seed + p.evaluate.seeds - 1}, above {MAX_SEED}; use a smaller seed")
    _check_window_fits(p)

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
        raise ParamsError(f"features.rsi_oversold: got {f.rsi_oversold:g}, expected below features.rsi_overbought ({f.rsi_overbought:g})")
    if f.wt_oversold >= f.wt_overbought:
        raise ParamsError(f"features.wt_oversold: got {f.wt_oversold:g}, expected below features.wt_overbought ({f.wt_overbought:g})")
    lists = {"models": p.run.models, "neural_models": p.run.neural_models, "joint_models": p.run.joint_models}
    if not any(lists.values()):
        raise ParamsError("run.models: got [] and run.neural_models and run.joint_models are empty too; list at least one model")
    known, seen = model_names(), {}
    for key, names in lists.items():
        for i, name in enumerate(names):
            if name not in known:
                raise ParamsError(f"run.{key}[{i}]: got {name!r}, expected one of {', '.join(known)} (a model is a file in models/zoo/)")
            if name in seen:
                raise ParamsError(f"run.{key}[{i}]: {name!r} is listed twice (also under run.{seen[name]})")
            seen[name] = key
    if p.run.tune and p.split.scheme == "fixed":  # else found by the tune stage, after ingest, featurize and window
        raise ParamsError(
            f"run.tune: got {list(p.run.tune)} with split.scheme fixed (one fold); fold k is tuned on the validation blocks of the folds "
            "before it and a single fold has none -- set run.tune: [] or split.scheme: walk_forward"
        )
    # which list a model belongs in follows from its declared kind: checked when its stages load it
    # (and for every model at once by `trendfactory check`)


def parse_params(raw: Mapping | None) -> Params:
    """Typed, validated Params from a parsed YAML mapping (None = all defaults)."""
    raw = dict(raw or {})
    models = _check_model_sections(raw.pop("models", None))
    params = build_config(Params, raw, "")
    params = dataclasses.replace(params, models=ModelSections(models, params.window.seq_len))
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


def config_to_dict(config) -> dict:
    """A config dataclass as plain JSON-able data (tuples become lists)."""

    def plain(v):
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def split_dates(split: SplitConfig) -> tuple[_dt.date, _dt.date]:
    """The fixed scheme's (train_end, val_end) as dates (featurize's ``plan_folds``)."""
    return _parse_date(split.train_end, "split.train_end"), _parse_date(split.val_end, "split.val_end")
