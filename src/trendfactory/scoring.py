"""Score new bars with a trained model: `trendfactory predict --model xgboost --horizon 5 --input bars.csv`.

New bars go through the pipeline's own code, never a copy of it:

  load + validate (data.csv_source / data.validation: ingest's one-line errors)
  -> context on the input's calendar (data.context.build_context: the same as-of joins and
     publication lags as ingest, when the training run used the embedded series; else only
     the universe breadth/dispersion context that featurize computes from the bars)
  -> stk_* / ctx_* features (features.build.compute_raw_features, what featurize calls)
  -> scaled with the last walk-forward fold's train-fitted scaler (data/features/folds.json;
     features.splits.apply_scaler; never refit)
  -> exactly the model's feature columns, windowed by windows.store.build_split (no labels) with
     the trained window store's seq_len (data/windows/meta.json, not params.yaml)
  -> Samples(..., labelled=False) -> the last fold's first-seed model (trained on the most recent data,
     models/<model>-h<h>/fold_XX/seed_00/) .predict -> the predictions data contract.

What is taken from the trained pipeline rather than from params.yaml, so an edited params.yaml
cannot silently mismatch the model: the window length, the scaler, the feature columns, the
context series and their release lags (data/raw/manifest.json), and whether the source had
high/low and volume. The feature periods themselves come from params.yaml (features.*); when
a dvc.lock is present they are checked against the values featurize last ran with.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from trendfactory.data import embedded
from trendfactory.data.context import build_context, is_daily_calendar, publication_times
from trendfactory.data.csv_source import load_csv_bars
from trendfactory.data.validation import check_min_length, combine
from trendfactory.errors import DataValidationError, TrendfactoryError
from trendfactory.features.build import compute_raw_features
from trendfactory.features.splits import apply_scaler
from trendfactory.features.stock import compute_stock_features, warmup_bars
from trendfactory.io import atomic_path, read_json
from trendfactory.models import Samples, TrendModel, get_model_class
from trendfactory.models.base import METADATA_FILE, PREDICTION_COLUMNS
from trendfactory.models.common.manifest import MANIFEST_FILE
from trendfactory.params import Params, config_to_dict
from trendfactory.models.registry import RUN_LIST, train_stage
from trendfactory.paths import FEATURES_DIR, RAW_DIR, WINDOWS_DIR, fitted_model_dir, item_id, model_dir
from trendfactory.windows.reader import WindowSplit
from trendfactory.windows.store import build_split

__all__ = ["TrainedPipeline", "default_output", "load_trained", "score_bars", "write_predictions"]

log = logging.getLogger("trendfactory")

# A series observed daily is stale once no new value was published for this long (weekends,
# holidays); a monthly one once the next month's release is overdue.
_DAILY_STALE = pd.Timedelta(days=7)
_MONTHLY_STALE = pd.Timedelta(days=32)
# Features of the scored windows that move by more than this (in train standard deviations)
# when the input starts later are still in their start-up transient (see _start_sensitivity).
_SETTLE_TOL = 1e-3
# Hardware/precision choices, not feature definitions: may differ between training and scoring.
_LOCK_IGNORED = ("device", "dtype")


SCORED_DIR = Path("scored")  # predict's default folder: git-ignored, so scores never land in a commit


def default_output(model: str, horizon: int) -> Path:
    """``scored/predictions-<model>-h<h>.csv`` under the current directory (``model``: the
    registered short name); the folder is git-ignored."""
    return SCORED_DIR / f"predictions-{item_id(get_model_class(model).name, horizon)}.csv"


# ----------------------------------------------------------------------------------------------
# the trained pipeline
# ----------------------------------------------------------------------------------------------


@dataclass
class TrainedPipeline:
    """Everything scoring takes from the trained pipeline's outputs."""

    model: TrendModel
    horizon: int
    schema: dict  # data/features/schema.json
    scaler: dict[str, dict]  # the last fold's scaler (data/features/folds.json)
    seq_len: int  # data/windows/meta.json
    manifest: dict  # data/raw/manifest.json


def _need(path: Path, stage: str, what: str) -> dict:
    if not path.is_file():
        raise TrendfactoryError(f"{path}: missing; scoring needs the trained pipeline's {what} (run `dvc repro {stage}`, or `dvc pull` it)")
    return read_json(path)


def load_trained(model: str, horizon: int, project_root: Path = Path("."), params: Params | None = None) -> TrainedPipeline:
    """The fitted model ``models/<model>-h<h>/`` and the featurize/window/ingest outputs it was
    trained on, with one-line errors that name the `dvc repro` target to run."""
    root = Path(project_root)
    cls = get_model_class(model)  # unknown model: the registry's message, listing the available ones
    h = int(horizon)
    stage = train_stage(cls.name, h)
    schema_path = root / FEATURES_DIR / "schema.json"
    folds_path = root / FEATURES_DIR / "folds.json"
    folds = _need(folds_path, "featurize", "walk-forward folds and their train-fitted scalers")
    saved = fitted_model_dir(root / model_dir(cls.name, h, cls.joint), len(folds) - 1, 0)  # the last fold's first seed
    # a horizon the pipeline never labelled: no rerun of the model's stage can make it (a network's
    # folder serves every trained horizon, so this comes before looking into it)
    trained_h = read_json(schema_path)["horizons"] if schema_path.is_file() else (list(params.label.horizons) if params else None)
    if trained_h is not None and h not in trained_h:
        raise TrendfactoryError(
            f"--horizon {h}: no model is trained for this horizon; the pipeline's label.horizons are {trained_h} (use one of them, or add {h} to label.horizons and run `dvc repro`)"
        )
    if not (saved / METADATA_FILE).is_file() and not (saved / MANIFEST_FILE).is_file():  # else load names the damage
        hint = ""
        run_list = RUN_LIST[cls.kind]
        if params is not None and cls.name not in getattr(params.run, run_list):
            hint = f" after adding {cls.name} to run.{run_list} in params.yaml"
        raise TrendfactoryError(
            f"{saved.parent.parent}: no trained {cls.name} model for horizon {h} (its last fold's first seed, {saved.parent.name}/{saved.name}); run `dvc repro {stage}`{hint} (or `dvc pull` it)"
        )
    fitted = TrendModel.load(saved)
    served = getattr(fitted, "horizons_", [fitted.horizon]) if cls.joint else [fitted.horizon]
    if fitted.name != cls.name or h not in served:
        raise TrendfactoryError(f"{saved}: holds {fitted.family}:{fitted.name} for horizon {served}, not {cls.name} h{h}; rerun `dvc repro {stage}`")
    schema = _need(schema_path, "featurize", "feature schema")
    scaler = folds[-1]["scaler"]
    meta = _need(root / WINDOWS_DIR / "meta.json", "window", "window store (for its seq_len)")
    manifest = _need(root / RAW_DIR / "manifest.json", "ingest", "ingest manifest (context series and source columns)")
    features = fitted.feature_names_
    if list(schema["feature_columns"]) != features or list(meta["feature_names"]) != features:
        raise TrendfactoryError(f"{saved}: the model's feature columns differ from {schema_path} / the window store; the model is older than the features: run `dvc repro {stage}`")
    missing = [c for c in features if c not in scaler]
    if missing:
        raise TrendfactoryError(f"{folds_path}: no scaler entry for {missing[:5]} in the last fold; run `dvc repro featurize`")
    return TrainedPipeline(fitted, h, schema, scaler, int(meta["seq_len"]), manifest)


def _check_feature_params(params: Params, params_path: str, project_root: Path) -> None:
    """features.* in params.yaml must be what featurize last ran with (from dvc.lock, when one exists)."""
    lock_path = Path(project_root) / "dvc.lock"
    if not lock_path.is_file():
        return
    try:
        lock = yaml.safe_load(lock_path.read_text()) or {}
        locked = next(iter(lock["stages"]["featurize"]["params"].values()))["features"]
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration):
        return  # no featurize record: nothing to compare with
    current = config_to_dict(params.features)
    for key, value in current.items():
        if key in _LOCK_IGNORED or key not in locked:
            continue
        if locked[key] != value:
            raise TrendfactoryError(
                f"{params_path}: features.{key} is {value!r}, but the trained features were computed with {locked[key]!r} ({lock_path}); restore it, or run `dvc repro` to retrain with the new value"
            )


# ----------------------------------------------------------------------------------------------
# input -> features
# ----------------------------------------------------------------------------------------------


def _load_input(input_path: str | Path, manifest: dict, timezone: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Validated bars (exactly what `data.source: csv` accepts), reduced to the columns the
    training source had: WaveTrend uses hlc3 when high/low exist and close otherwise, so a
    close-only model must not see the input's high/low. Stamps with a UTC offset are converted to
    ``timezone`` (the training run's ``data.timezone``), as ingest converted the training bars."""
    frames, origins = load_csv_bars(input_path, timezone=timezone)
    bars = combine(frames)
    drop = []
    if not manifest.get("has_high_low", True):
        drop += [c for c in ("open", "high", "low") if c in bars.columns]
    if not manifest.get("has_volume", True):
        drop += [c for c in ("volume",) if c in bars.columns]
    if drop:
        bars = bars.drop(columns=drop)
    return bars, origins


@dataclass
class _Coverage:
    name: str
    columns: list[str]  # context frame columns of this series
    first: pd.Timestamp  # first publication
    stale_after: pd.Timestamp  # bars after this would only see a stale value


def _context(bars: pd.DataFrame, manifest: dict) -> tuple[pd.DataFrame, list[_Coverage]]:
    """The context frame ingest would build for these bars' calendar, and each embedded
    series' coverage. Values the as-of join would carry past a series' end are masked (a
    stale oil price is not "known" at a later bar), so those bars' windows are incomplete."""
    calendar = pd.DatetimeIndex(bars["datetime"].drop_duplicates().sort_values())
    if manifest.get("context_mode", "none") != "embedded":
        return pd.DataFrame({"datetime": calendar.astype("datetime64[ns]")}), []
    series, lags = {}, {}
    for name, rep in manifest.get("context", {}).items():
        loader, monthly = embedded.CONTEXT_SERIES[name]
        series[name] = (loader().frame, monthly)
        lags[name] = int(rep.get("release_lag_days", 0))
    context, report = build_context(calendar, series, lags)
    daily = is_daily_calendar(calendar)
    trained_end = pd.Timestamp(manifest["end"]) if manifest.get("end") else calendar.max()
    coverage = []
    for name, (frame, monthly) in series.items():
        pub = publication_times(frame["datetime"], monthly, lags[name], daily)
        stale_after = pub.max() + (_MONTHLY_STALE if monthly else _DAILY_STALE)
        cols = report[name]["columns"]
        # Inside the training run's own dates the pipeline used the joined values as they are:
        # keep them, so re-scoring the training history reproduces its features exactly.
        stale = context["datetime"] > max(stale_after, trained_end)
        context.loc[stale, cols] = np.nan
        coverage.append(_Coverage(name, cols, pd.Timestamp(pub.min()), pd.Timestamp(stale_after)))
    return context, coverage


def _min_bars(trained: TrainedPipeline, params: Params) -> tuple[int, str]:
    """Bars each symbol needs for one complete window, and the why for the message."""
    warm = int(trained.schema.get("warmup_bars", warmup_bars(params.features)))
    ctx_warm = max(params.features.context_lookbacks) if any(c.startswith("ctx_") for c in trained.model.feature_names_) else 0
    if "ctx_credit_spread_chg_60" in trained.model.feature_names_:
        ctx_warm = max(ctx_warm, 60)
    w = max(warm, ctx_warm)
    return w + trained.seq_len, f"{w} warm-up bars of the longest indicator + window length {trained.seq_len} of the trained window store"


def _scaled_features(bars: pd.DataFrame, context: pd.DataFrame, trained: TrainedPipeline, params: Params, origin: str = "input") -> tuple[pd.DataFrame, dict]:
    """[N, F] float32 features in the model's column order, scaled with the train-fitted scaler."""
    raw = compute_raw_features(bars, context, params.features)
    features = trained.model.feature_names_
    missing = [c for c in features if c not in raw.columns]
    if missing:
        why = "; ".join(f"{k}: {v}" for k, v in raw.skipped.items())
        raise DataValidationError(
            f"{origin}: the model uses {len(missing)} feature(s) these bars cannot give ({', '.join(missing[:6])}"
            f"{'...' if len(missing) > 6 else ''}){' - ' + why if why else ''}; give bars with the same columns as "
            f"the training data ({', '.join(trained.manifest.get('columns', []))})"
        )
    # through float32 first, as featurize stores them: the same numbers the window store's fold views scale
    with np.errstate(over="ignore"):
        frame = pd.DataFrame({c: raw.columns[c].to_numpy(dtype=np.float32) for c in features}, index=bars.index)
    _undefine_lone_dispersion(frame, bars, trained)
    scaled = apply_scaler(frame, {c: trained.scaler[c] for c in features}, params.features.clip)
    return scaled, raw.groups


def _undefine_lone_dispersion(frame: pd.DataFrame, bars: pd.DataFrame, trained: TrainedPipeline) -> None:
    """NaN the dispersion features on input dates with a single symbol, when the model learned
    them from a universe of several. Featurize sets a lone symbol's dispersion to 0 (so a ragged
    universe keeps its rows), but 0 across one symbol is not the spread of the N-symbol universe
    the model was trained on: scoring such a bar would be a silent guess, so it is left out with
    the reason instead (see ``_why_incomplete``)."""
    n_trained = trained.manifest.get("n_symbols")
    cols = [c for c in frame.columns if c.startswith("ctx_dispersion")]
    if not cols or not isinstance(n_trained, int) or n_trained < 2:
        return
    alone = bars.groupby("datetime")["symbol"].transform("nunique").to_numpy() < 2
    if alone.any():
        frame.loc[alone, cols] = np.nan


# ----------------------------------------------------------------------------------------------
# diagnostics
# ----------------------------------------------------------------------------------------------


def _tail_rows(bars: pd.DataFrame, n: int) -> np.ndarray:
    """Positions of each symbol's last ``n`` rows (bars sorted by symbol, datetime)."""
    from_end = bars.groupby("symbol", sort=False).cumcount(ascending=False).to_numpy()
    return np.flatnonzero(from_end < n)


def _why_incomplete(bars: pd.DataFrame, X: pd.DataFrame, rows: np.ndarray, groups: dict, coverage: list[_Coverage], trained: TrainedPipeline) -> str:
    """Why the windows over ``rows`` are incomplete, with what to do about it."""
    bad = [c for c in X.columns if not np.isfinite(X[c].to_numpy()[rows]).all()]
    if not bad:
        return f"no {trained.seq_len} consecutive bars with complete features; give more history per symbol"
    reasons = []
    embedded_cols = set(groups.get("market", [])) | set(groups.get("macro", []))
    if coverage and any(c in embedded_cols for c in bad):
        lo = max(cov.first for cov in coverage).date()
        hi = min(cov.stale_after for cov in coverage).date()
        ranges = ", ".join(f"{cov.name} {cov.first.date()}..{cov.stale_after.date()}" for cov in coverage)
        span = f"{bars['datetime'].min().date()}..{bars['datetime'].max().date()}"
        reasons.append(
            f"the model's embedded market/macro context is undefined for these dates (input bars {span}; the series "
            f"cover {lo}..{hi}: {ranges}): score bars dated inside that range with enough history before them, "
            f"or retrain with data.context: none"
        )
    breadth = [c for c in bad if c in groups.get("breadth", [])]
    if breadth:
        at = rows[~np.isfinite(X[breadth].to_numpy()[rows]).all(axis=1)]
        dates = bars["datetime"].to_numpy()[at]
        n_per_date = bars.groupby("datetime")["symbol"].nunique()
        per_date = int(n_per_date.reindex(dates).min())
        example = pd.Timestamp(dates[np.argmin(n_per_date.reindex(dates).to_numpy())]).date()
        n_trained = trained.manifest.get("n_symbols", "?")
        reasons.append(
            f"cross-sectional context ({', '.join(breadth[:3])}{'...' if len(breadth) > 3 else ''}) is undefined on dates "
            f"with {per_date} symbol(s) (e.g. {example}): score the same universe, on the same dates, as the model was "
            f"trained on ({n_trained} symbols)"
        )
    stock = [c for c in bad if c.startswith("stk_")]
    if stock:
        reasons.append(f"stock features {', '.join(stock[:3])} are not finite at the latest bars: give more history per symbol")
    if not reasons:
        reasons.append(f"features {', '.join(bad[:5])} are not finite at the latest bars")
    return "; ".join(reasons)


def _start_sensitivity(bars: pd.DataFrame, X: pd.DataFrame, trained: TrainedPipeline, params: Params, need: int) -> None:
    """Warn when the scored bars' stock features still depend on where the input starts.

    Smoothed indicators (RSI, MACD, ADX/DI, ATR, WaveTrend: EMA / Wilder recursions) remember
    their start-up forever, decaying geometrically; their NaN warm-up is only where they become
    defined, not where they have converged. The pipeline computed them from the start of the
    training history, so a short input can give different values at the same bar. Measured,
    not guessed: each symbol's last window is recomputed without the first half of the input
    (keeping at least ``need`` bars); if a scaled feature moves by more than ``_SETTLE_TOL``
    train standard deviations, the start-up transient is still visible and we say so. Context
    features (rolling and shifted: finite memory) are exact once defined.
    """
    stk = [c for c in X.columns if c.startswith("stk_")]
    counts = bars.groupby("symbol", sort=False).size()
    drop = np.minimum(counts // 2, counts - need).clip(lower=0)
    if not stk or not (drop > 0).any():
        return
    pos = bars.groupby("symbol", sort=False).cumcount().to_numpy()
    late = bars[pos >= drop.reindex(bars["symbol"]).to_numpy()].reset_index(drop=True)
    part = compute_stock_features(late, params.features).frame
    part = apply_scaler(part, {c: trained.scaler[c] for c in stk}, params.features.clip)
    L = trained.seq_len
    a = X[stk].to_numpy(dtype=np.float64)[_tail_rows(bars, L)]
    b = part[stk].to_numpy(dtype=np.float64)[_tail_rows(late, L)]
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    diff = np.where(np.isfinite(diff), diff, 0.0).max(axis=0)  # per column, scaled units
    moved = np.flatnonzero(diff > _SETTLE_TOL)
    if moved.size:
        # name a continuous feature when one moved (a flipped {-1,0,1} signal says less)
        cont = [i for i in moved if trained.scaler[stk[i]]["kind"] == "zscore"]
        worst = max(cont or moved.tolist(), key=lambda i: diff[i])
        log.warning(
            "features still depend on where the input starts: %d stock feature(s) of the latest windows change when "
            "the first %d bars are dropped (e.g. %s by %.3g train std; smoothed indicators have not settled); give "
            "more history per symbol (this input has %d bars at most) so scores match what the pipeline computes "
            "from a long history",
            moved.size,
            int(drop.max()),
            stk[worst],
            diff[worst],
            int(counts.max()),
        )


# ----------------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------------


def score_bars(
    input_path: str | Path,
    model: str,
    horizon: int,
    params: Params,
    project_root: Path = Path("."),
    all_rows: bool = False,
    params_path: str = "params.yaml",
) -> pd.DataFrame:
    """Predictions for the bars in ``input_path`` (a CSV/Parquet file or a directory of
    per-symbol files, as ``data.source: csv`` reads) with the trained ``model`` at ``horizon``.

    Default: one row per symbol, for the symbol's latest bar (symbols whose latest bar cannot be
    scored are left out with a warning). ``all_rows=True``: every bar with a complete window.
    Returns the predictions data contract (symbol, datetime, horizon, pred, p_down, p_flat,
    p_up, score), sorted by symbol and datetime. Nothing is written but a temporary window store.
    """
    # Long on purpose: the predict path in pipeline order (validate, featurize, window, scale, score), each step a call.
    root = Path(project_root)
    trained = load_trained(model, horizon, root, params)
    _check_feature_params(params, params_path, root)
    bars, origins = _load_input(input_path, trained.manifest, params.data.timezone)
    need, why = _min_bars(trained, params)
    # origins names every symbol's file (load_csv_bars), so the message always names the user's file
    check_min_length(bars, need, origins, why, needed="needed to score one bar", fix=f"give at least {need} bars of history per symbol")

    context, coverage = _context(bars, trained.manifest)
    X, groups = _scaled_features(bars, context, trained, params, str(input_path))
    features = list(X.columns)
    _warn_universe(bars, trained, groups)

    with tempfile.TemporaryDirectory(prefix="trendfactory-predict-") as tmp:
        tmp = Path(tmp)
        table = pd.DataFrame({"symbol": bars["symbol"].astype(str).to_numpy(), "datetime": bars["datetime"].to_numpy()})
        table = pd.concat([table, X.reset_index(drop=True)], axis=1)
        table.to_parquet(tmp / "input.parquet", index=False, engine="pyarrow")
        del table
        build_split(tmp / "input.parquet", tmp / "windows", features, horizons=[], seq_len=trained.seq_len, scaler=trained.scaler)
        split = WindowSplit.open(tmp / "windows")
        valid = np.asarray(split.index(None))
        if all_rows:
            ends = valid
            if ends.size == 0:
                reason = _why_incomplete(bars, X, _tail_rows(bars, trained.seq_len), groups, coverage, trained)
                raise DataValidationError(f"{input_path}: no bar could be scored: {reason}")
            unscored = sorted(set(map(str, bars["symbol"].unique())) - set(split.symbol_names[c] for c in np.unique(np.asarray(split.symbol_codes)[ends])))
            if unscored:
                log.warning(
                    "%d symbol(s) have no bar that can be scored (%s%s): %s",
                    len(unscored),
                    ", ".join(unscored[:5]),
                    "..." if len(unscored) > 5 else "",
                    _why_incomplete(bars, X, _rows_of(bars, np.array(unscored, dtype=object), trained.seq_len), groups, coverage, trained),
                )
        else:
            last = np.flatnonzero(bars.groupby("symbol", sort=False).cumcount(ascending=False).to_numpy() == 0)
            ok = np.isin(last, valid)
            ends = last[ok]
            if not ok.all():
                syms = bars["symbol"].to_numpy()[last[~ok]]
                reason = _why_incomplete(bars, X, _rows_of(bars, syms, trained.seq_len), groups, coverage, trained)
                if ends.size == 0:
                    earlier = ""
                    if valid.size:
                        until = pd.Timestamp(bars["datetime"].to_numpy()[valid].max()).date()
                        earlier = f" ({valid.size:,} earlier bars, up to {until}, can be scored with --all-rows)"
                    raise DataValidationError(f"{input_path}: no symbol's latest bar could be scored{earlier}: {reason}")
                log.warning(
                    "left out %d symbol(s) whose latest bar cannot be scored (%s%s): %s",
                    len(syms),
                    ", ".join(map(str, syms[:5])),
                    "..." if len(syms) > 5 else "",
                    reason,
                )
        _start_sensitivity(bars, X, trained, params, need)
        samples = Samples(split, trained.horizon, ends=ends, labelled=False)
        preds = trained.model.predict(samples)
        out = preds.to_frame(samples.keys(), trained.horizon)
        del samples, split  # release the memmaps before the temp dir goes
    _warn_in_sample(out, trained, params)
    return out.reset_index(drop=True)


def _rows_of(bars: pd.DataFrame, symbols: np.ndarray, n: int) -> np.ndarray:
    """Positions of the last ``n`` rows of each of ``symbols``."""
    rows = _tail_rows(bars, n)
    return rows[np.isin(bars["symbol"].to_numpy()[rows], symbols)]


def _warn_universe(bars: pd.DataFrame, trained: TrainedPipeline, groups: dict) -> None:
    if not any(c in groups.get("breadth", []) for c in trained.model.feature_names_):
        return
    trained_syms = set(trained.manifest.get("symbols", []))
    have = set(bars["symbol"].astype(str).unique())
    if trained_syms and have != trained_syms:
        log.warning(
            "the input has %d symbol(s), %d of them among the %d the model was trained on: the universe "
            "breadth/dispersion context (ctx_ew_*, ctx_breadth_*, ctx_dispersion_*) is computed over the input's "
            "symbols, so it differs from training unless you score the same universe",
            len(have),
            len(have & trained_syms),
            len(trained_syms),
        )


def _warn_in_sample(out: pd.DataFrame, trained: TrainedPipeline, params: Params) -> None:
    """Bars before the last fold's test block were seen in fitting / early stopping."""
    if out.empty:
        return
    folds = trained.schema.get("split", {}).get("folds") or [{}]
    test_start = folds[-1].get("test_start")
    if test_start is None:
        return
    cutoff = pd.Timestamp(test_start)
    val_end = (cutoff - pd.Timedelta(days=1)).date()
    n_in = int((pd.to_datetime(out["datetime"]) < cutoff).sum())
    if n_in:
        log.warning(
            "%d of %d scored bars are dated on or before %s, the end of the last fold's validation block: the model was fitted or early-stopped on them, so their scores are in-sample",
            n_in,
            len(out),
            val_end,
        )


def write_predictions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write predictions atomically: Parquet for a ``.parquet``/``.pq`` suffix, else CSV."""
    path = Path(path)
    frame = frame[list(PREDICTION_COLUMNS)]
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False, engine="pyarrow")
        else:
            frame.to_csv(tmp, index=False)
    return path
