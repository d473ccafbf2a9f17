"""Stage `featurize`: raw bars + context -> data/features/{train,val,test}.parquet, schema, scaler."""

from __future__ import annotations

import pandas as pd

from trendfactory.features.build import build_features
from trendfactory.io import write_json, write_parquet
from trendfactory.paths import FEATURES_DIR as OUT_DIR
from trendfactory.paths import RAW_DIR
from trendfactory.stages.common import log, stage_main



def main_body(params, args) -> None:
    bars_path = RAW_DIR / "bars.parquet"
    bars = pd.read_parquet(bars_path)
    context = pd.read_parquet(RAW_DIR / "context.parquet")
    result = build_features(bars, context, params, origin=str(bars_path))
    s = result.schema
    log.info(
        "features: %d stock + %d context; rows train/val/test = %s; purged %s; embargoed %s",
        s["n_features"]["stock"], s["n_features"]["context"],
        "/".join(str(s["split"]["rows"][k]) for k in ("train", "val", "test")),
        s["split"]["purged"], s["split"]["embargoed"],
    )
    for name, frame in result.splits.items():
        write_parquet(frame, OUT_DIR / f"{name}.parquet")
    write_json(result.scaler, OUT_DIR / "scaler.json")
    write_json(s, OUT_DIR / "schema.json")


def main() -> None:
    stage_main("featurize", main_body)


if __name__ == "__main__":
    main()
