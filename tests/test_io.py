"""Atomic writers: a killed writer's temps are removed by the next writer of the same target,
never a live writer's."""

from __future__ import annotations

import os
import subprocess
import sys

from trendfactory.io import atomic_dir, atomic_path, remove_stale_temps


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no process has this pid now (pids are not reused this fast)


def test_next_write_removes_a_killed_writers_temps(tmp_path):
    target = tmp_path / "mlp-h5"
    dead = _dead_pid()
    stale_dir = tmp_path / f".mlp-h5.{dead}.abc123.tmp"
    (stale_dir / "fold_00").mkdir(parents=True)
    stale_file = tmp_path / f".mlp-h5.{dead}.old.tmp"
    stale_file.write_text("x")
    legacy = tmp_path / ".mlp-h5.k2j_x9.tmp"  # the name older code used (no pid)
    legacy.mkdir()
    half_swapped = tmp_path / ".mlp-h5.old"  # killed between atomic_dir's two renames
    half_swapped.mkdir()
    other = tmp_path / f".mlp-h20.{dead}.abc.tmp"  # another target's temp: not ours to touch
    other.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "model.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mlp-h5", other.name])


def test_a_live_writers_temp_is_kept(tmp_path):
    target = tmp_path / "bars.parquet"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = tmp_path / f".bars.parquet.{live.pid}.x1.tmp"
        busy.write_text("being written")
        with atomic_path(target) as tmp:
            tmp.write_text("done")
        assert busy.exists() and target.read_text() == "done"
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(target) == [busy] and not busy.exists()


def test_temp_names_carry_the_writers_pid(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:
        assert tmp.name.startswith(f".a.json.{os.getpid()}.") and tmp.name.endswith(".tmp")
    with atomic_dir(tmp_path / "d") as tmp:
        assert tmp.name.startswith(f".d.{os.getpid()}.")


def test_glob_characters_in_a_name_match_only_themselves(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".a[1].{dead}.x.tmp").write_text("stale")
    (tmp_path / f".a1.{dead}.x.tmp").write_text("someone else's")
    removed = remove_stale_temps(tmp_path / "a[1]")
    assert [p.name for p in removed] == [f".a[1].{dead}.x.tmp"]


# ---- a parquet streamed chunk by chunk ----------------------------------------------------------


def _frame(symbols: list[str], n: int = 4):
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "symbol": np.repeat(symbols, n),
            "x": np.arange(len(symbols) * n, dtype=np.float32),
            "label": pd.array([1, None] * (len(symbols) * n // 2), dtype="Int8"),
        }
    )


def test_a_streamed_parquet_is_what_to_parquet_writes(tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    from trendfactory.io import parquet_stream

    whole = _frame(["A", "B", "C"])
    whole.to_parquet(tmp_path / "reference.parquet", index=False)
    with parquet_stream(tmp_path / "one.parquet") as stream:
        stream.write(whole)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "reference.parquet").read_bytes()
    with parquet_stream(tmp_path / "chunked.parquet") as stream:
        stream.write(_frame(["A", "B"]))
        stream.write(_frame(["C"]).assign(x=whole["x"].iloc[8:].to_numpy()))
    assert pq.ParquetFile(tmp_path / "chunked.parquet").num_row_groups == 2  # one per chunk
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chunked.parquet"), whole)


def test_a_failed_stream_leaves_neither_target_nor_temp(tmp_path):
    import pytest

    from trendfactory.io import parquet_stream

    with pytest.raises(ValueError, match=r"bars\.parquet: a chunk's columns differ from the first chunk's: column 'x' is double here, float in the first chunk"):
        with parquet_stream(tmp_path / "bars.parquet") as stream:
            stream.write(_frame(["A"]))
            stream.write(_frame(["B"]).astype({"x": "float64"}))
    assert list(tmp_path.iterdir()) == []


def test_dropping_columns_rewrites_the_stream(tmp_path):
    import pandas as pd

    from trendfactory.io import parquet_stream

    with parquet_stream(tmp_path / "f.parquet") as stream:
        stream.write(_frame(["A", "B"]))
        stream.write(_frame(["C"]))
        stream.drop_columns(["x"])
    expected = pd.concat([_frame(["A", "B"]), _frame(["C"])], ignore_index=True).drop(columns=["x"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]
