"""Build a tiny pipeline's window stores in-process (the stages' own functions, no DVC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trendfactory.data.ingest import run_ingest
from trendfactory.features.build import build_features
from trendfactory.io import write_parquet
from trendfactory.params import Params, parse_params
from trendfactory.windows.store import build_split


def tiny_params(n_symbols: int = 6, n_bars: int = 420, signal: float = 0.5, horizons=(5,), seq_len: int = 8, **sections) -> Params:
    """Synthetic OHLCV, no embedded context: seconds to featurize."""
    raw = {
        "data": {"source": "synthetic", "start": None, "end": None,
                 "synthetic": {"n_symbols": n_symbols, "n_bars": n_bars, "start": "2000-01-03", "signal_strength": signal}},
        "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
        "label": {"horizons": list(horizons)},
        "window": {"seq_len": seq_len},
    }
    raw.update(sections)
    return parse_params(raw)


def build_stores(root: Path, params: Params, train_frac: float = 0.6, val_frac: float = 0.2) -> Path:
    """ingest + featurize + window into ``root/data/...`` with one fold (the fixed scheme), split
    dates placed by fractions; returns the window store: ``Samples.open(store, h, 0, "train")``."""
    ingest = run_ingest(params.data, params.seed)
    dates = ingest.bars["datetime"].drop_duplicates().sort_values().reset_index(drop=True)
    te, ve = dates[int(len(dates) * train_frac)], dates[int(len(dates) * (train_frac + val_frac))]
    split = {"scheme": "fixed", "train_end": str(te.date()), "val_end": str(ve.date()), "embargo": 5}
    params = parse_params({**_as_raw(params), "split": split})
    return write_stores(root, params, ingest)


def write_stores(root: Path, params: Params, ingest=None) -> Path:
    """featurize + window of ``params`` (any split scheme) into ``root/data/...``; the window store's path."""
    ingest = ingest or run_ingest(params.data, params.seed)
    result = build_features(ingest.bars, ingest.context, params)
    feats = root / "data" / "features"
    write_parquet(result.frame, feats / "features.parquet")
    build_split(feats / "features.parquet", root / "data" / "windows", result.schema["feature_columns"],
                result.schema["horizons"], params.window.seq_len, folds=result.folds)
    write_parquet(ingest.bars, root / "data" / "raw" / "bars.parquet")
    return root / "data" / "windows"


def _as_raw(params: Params) -> dict:
    import dataclasses

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(params)


def chance_band(y: np.ndarray, overlap: int) -> float:
    """4 standard errors of balanced accuracy under the null, with n shrunk by label overlap."""
    n_eff = np.array([(y == c).sum() for c in (-1, 0, 1)]) / overlap
    p = 1 / 3  # a chance classifier's recall on each class
    return 4 * np.sqrt(np.sum(p * (1 - p) / n_eff)) / 3
