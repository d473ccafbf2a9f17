"""Stage `featurize`: raw bars + context -> data/features/features.parquet (every bar: unscaled
features, labels, one role column per fold), folds.json (each fold's boundaries and
train-fitted scaler) and schema.json."""

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
    log.info("features: %d stock + %d context; %s scheme, %d fold(s)", s["n_features"]["stock"], s["n_features"]["context"],
             s["split"]["scheme"], len(result.folds))
    for f in s["split"]["folds"]:
        d = f["dates"]
        log.info("fold %d: train %s..%s, val %s..%s, test %s..%s; rows %s; purged %s; embargoed %s", f["index"],
                 *d["train"], *d["val"], *d["test"], "/".join(str(f["rows"][k]) for k in ("train", "val", "test")),
                 f["purged"], f["embargoed"])
    write_parquet(result.frame, OUT_DIR / "features.parquet")
    write_json(result.folds, OUT_DIR / "folds.json")
    write_json(s, OUT_DIR / "schema.json")


def main() -> None:
    stage_main("featurize", main_body)


if __name__ == "__main__":
    main()
