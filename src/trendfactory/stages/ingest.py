"""Stage `ingest`: source bars -> data/raw/{bars,context}.parquet + manifest.json."""

from __future__ import annotations

from trendfactory.data.ingest import run_ingest
from trendfactory.data.universe import required_history
from trendfactory.io import write_json, write_parquet
from trendfactory.paths import RAW_DIR
from trendfactory.stages.common import log, stage_main


def main_body(params, args) -> None:
    # symbols too short for featurize's warm-up are dropped (or refused) here, where their files are known
    result = run_ingest(params.data, params.seed, history=required_history(params.features, params.label))
    m = result.manifest
    log.info("%s: %d rows, %d symbols, %s .. %s", m["source"], m["rows"], m["n_symbols"], m["start"][:10], m["end"][:10])
    for name, rep in m["context"].items():
        if rep["bars_after_end"]:
            log.warning(
                "context series %s ends at %s: its last value goes stale %d days after publication, so the last %d bar "
                "time(s) (to %s) get no %s value and stay out of the windows; leave it out of data.context_series or end "
                "data.end earlier", name, rep["last_stamp"], rep["stale_after_days"], rep["bars_after_end"], m["end"][:10], name,
            )
    # Validation passed and everything is in memory: only now touch the outputs.
    write_parquet(result.bars, RAW_DIR / "bars.parquet")
    write_parquet(result.context, RAW_DIR / "context.parquet")
    write_json(m, RAW_DIR / "manifest.json")


def main() -> None:
    stage_main("ingest", main_body)


if __name__ == "__main__":
    main()
