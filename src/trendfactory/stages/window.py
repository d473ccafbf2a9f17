"""Stage `window`: data/features/{split}.parquet -> data/windows/{split}/ memory-mappable arrays."""

from __future__ import annotations

from pathlib import Path

from trendfactory.features.splits import SPLITS
from trendfactory.io import read_json
from trendfactory.stages.common import log, stage_main
from trendfactory.windows.store import build_split

FEATURES_DIR = Path("data/features")
OUT_DIR = Path("data/windows")


def main_body(params, args) -> None:
    schema = read_json(FEATURES_DIR / "schema.json")
    for name in SPLITS:
        summary = build_split(
            FEATURES_DIR / f"{name}.parquet",
            OUT_DIR / name,
            feature_columns=schema["feature_columns"],
            horizons=schema["horizons"],
            seq_len=params.window.seq_len,
        )
        log.info("%s: %s", name, {k: v for k, v in summary.items() if isinstance(v, (int, float, str))})


def main() -> None:
    stage_main("window", main_body)


if __name__ == "__main__":
    main()
