"""Stage `ingest`: source bars -> data/raw/{bars,context}.parquet + manifest.json.

The bars are appended to bars.parquet ``data.chunk_symbols`` symbols at a time (one row group
per chunk) at a temp name, renamed into place only once the whole universe has passed every
check: memory holds one chunk, and a failed or killed run leaves no partial file."""

from __future__ import annotations

from trendfactory.data.chunks import ParquetSink
from trendfactory.data.ingest import ingest_chunks
from trendfactory.data.universe import required_history
from trendfactory.io import parquet_stream, write_json, write_parquet
from trendfactory.paths import RAW_DIR
from trendfactory.stages.common import log, stage_main


def main_body(params, args) -> None:
    # symbols too short for featurize's warm-up are dropped (or refused) here, where their files are known
    with parquet_stream(RAW_DIR / "bars.parquet") as stream:
        result = ingest_chunks(params.data, params.seed, required_history(params.features, params.label), ParquetSink(stream, params.data.chunk_symbols))
    m = result.manifest
    log.info("%s: %d rows, %d symbols, %s .. %s", m["source"], m["rows"], m["n_symbols"], m["start"][:10], m["end"][:10])
    for name, rep in m["context"].items():
        if rep["bars_after_end"]:
            log.warning(
                "context series %s ends at %s: its last value goes stale %d days after publication, so the last %d bar "
                "time(s) (to %s) get no %s value and stay out of the windows; leave it out of data.context_series or end "
                "data.end earlier",
                name,
                rep["last_stamp"],
                rep["stale_after_days"],
                rep["bars_after_end"],
                m["end"][:10],
                name,
            )
    write_parquet(result.context, RAW_DIR / "context.parquet")
    write_json(m, RAW_DIR / "manifest.json")


def main() -> None:
    stage_main("ingest", main_body)


if __name__ == "__main__":
    main()
