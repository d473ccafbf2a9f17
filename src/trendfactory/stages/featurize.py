"""Stage `featurize`: raw bars + context -> data/features/features.parquet (every bar: unscaled
features, labels, one role column per fold), folds.json (each fold's boundaries and
train-fitted scaler) and schema.json.

bars.parquet is read ``data.chunk_symbols`` symbols at a time and features.parquet appended a
chunk at a time (one row group per chunk) at a temp name, renamed into place once complete:
memory holds one chunk, and a failed or killed run leaves no partial file."""

from __future__ import annotations

import pandas as pd

from trendfactory.data.chunks import ParquetChunks
from trendfactory.features.build import featurize
from trendfactory.io import parquet_stream, write_json
from trendfactory.paths import FEATURES_DIR as OUT_DIR
from trendfactory.paths import RAW_DIR
from trendfactory.stages.common import log, stage_main


def main_body(params, args) -> None:
    bars_path = RAW_DIR / "bars.parquet"
    chunks = ParquetChunks(bars_path, params.data.chunk_symbols)
    context = pd.read_parquet(RAW_DIR / "context.parquet")
    with parquet_stream(OUT_DIR / "features.parquet") as stream:
        schema, folds = featurize(chunks, context, params, stream, origin=str(bars_path))
    s = schema
    log.info("features: %d stock + %d context; %s scheme, %d fold(s)", s["n_features"]["stock"], s["n_features"]["context"], s["split"]["scheme"], len(folds))
    for f in s["split"]["folds"]:
        d = f["dates"]
        log.info(
            "fold %d: train %s..%s, val %s..%s, test %s..%s; rows %s; purged %s; embargoed %s",
            f["index"],
            *d["train"],
            *d["val"],
            *d["test"],
            "/".join(str(f["rows"][k]) for k in ("train", "val", "test")),
            f["purged"],
            f["embargoed"],
        )
    write_json(folds, OUT_DIR / "folds.json")
    write_json(s, OUT_DIR / "schema.json")


def main() -> None:
    stage_main("featurize", main_body)


if __name__ == "__main__":
    main()
