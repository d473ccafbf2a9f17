"""Stage `window`: data/features/features.parquet -> data/windows/, one memory-mappable store of
every bar with each row's role per fold (folds read it through their own scaler; nothing is
copied per fold)."""

from __future__ import annotations

from trendfactory.io import read_json
from trendfactory.paths import FEATURES_DIR
from trendfactory.paths import WINDOWS_DIR as OUT_DIR
from trendfactory.stages.common import log, stage_main
from trendfactory.windows.store import build_split


def main_body(params, args) -> None:
    schema = read_json(FEATURES_DIR / "schema.json")
    folds = read_json(FEATURES_DIR / "folds.json")
    summary = build_split(
        FEATURES_DIR / "features.parquet",
        OUT_DIR,
        feature_columns=schema["feature_columns"],
        horizons=schema["horizons"],
        seq_len=params.window.seq_len,
        folds=folds,
        label=schema["label"],
    )
    c = summary["counts"]
    per_h = ", ".join(f"h{h}: {v['windows']:,}" for h, v in c["horizons"].items())
    log.info("%s rows x %d features, %s windows of %d bars (%s)", f"{c['rows']:,}", summary["n_features"], f"{c['windows']:,}", summary["seq_len"], per_h)
    for k, f in enumerate(summary["folds"]):
        log.info("fold %d (test %s..%s): windows train/val/test = %s", k, f["test_start"], f["test_end"] or "end", "/".join(f"{f['windows'][r]:,}" for r in ("train", "val", "test")))


def main() -> None:
    stage_main("window", main_body)


if __name__ == "__main__":
    main()
