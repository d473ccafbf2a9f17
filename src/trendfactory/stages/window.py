"""Stage `window`: data/features/{split}.parquet -> data/windows/{split}/ memory-mappable arrays."""

from __future__ import annotations

from trendfactory.features.splits import SPLITS
from trendfactory.io import read_json
from trendfactory.paths import FEATURES_DIR
from trendfactory.paths import WINDOWS_DIR as OUT_DIR
from trendfactory.stages.common import log, stage_main
from trendfactory.windows.store import build_split



def main_body(params, args) -> None:
    schema = read_json(FEATURES_DIR / "schema.json")
    scaler = read_json(FEATURES_DIR / "scaler.json")
    for name in SPLITS:
        summary = build_split(
            FEATURES_DIR / f"{name}.parquet",
            OUT_DIR / name,
            feature_columns=schema["feature_columns"],
            horizons=schema["horizons"],
            seq_len=params.window.seq_len,
            scaler=scaler,
        )
        c = summary["counts"]
        per_h = ", ".join(f"h{h}: {v['windows']:,}" for h, v in c["horizons"].items())
        log.info("%s: %s rows x %d features, %s windows of %d bars (%s)",
                 name, f"{c['rows']:,}", summary["n_features"], f"{c['windows']:,}", summary["seq_len"], per_h)


def main() -> None:
    stage_main("window", main_body)


if __name__ == "__main__":
    main()
