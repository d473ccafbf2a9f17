"""Atomic writers: build every output at a temp path next to its target, then rename.

A stage that fails half-way therefore never leaves a half-written file for DVC to cache. A
stage that is killed (SIGKILL, power loss) cannot clean up after itself, so temp names carry
the writer's process id (``.<target>.<pid>.<random>.tmp``) and the next writer of the same
target removes the temps of processes that are gone.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Delete the temp files/dirs that killed writers of ``target`` left beside it (and a
    ``.<target>.old`` left by a kill between atomic_dir's two renames); returns what went."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = path.name[len(target.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue  # a live writer (another process is building it right now)
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
        removed.append(path)
    old = target.with_name(f".{target.name}.old")
    if old.is_dir():
        shutil.rmtree(old)
        removed.append(old)
    return removed


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def make_temp_dir(target: str | Path, tag: str = "") -> Path:
    """A new temp dir beside ``target`` named so that :func:`remove_stale_temps` recognises it
    once its process is gone (``tag`` marks its purpose in the name, e.g. 'old')."""
    target = Path(target)
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=f".{tag}.tmp" if tag else ".tmp", dir=target.parent))


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success rename it over `target`, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs should read like any file
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temp dir beside `target`; on success it replaces `target` whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = make_temp_dir(target)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(obj: Any, target: str | Path) -> None:
    """Write pretty, key-sorted JSON atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(frame: pd.DataFrame, target: str | Path) -> None:
    """Write a DataFrame to Parquet atomically (no index)."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow")


class ParquetStream:
    """A Parquet file written chunk by chunk at a temp path beside its target (see
    :func:`parquet_stream`): memory holds one chunk, never the whole file.

    Each :meth:`write` is one row group, written the way ``DataFrame.to_parquet(index=False)``
    writes (a file of one chunk is byte-identical to it)."""

    def __init__(self, target: Path, tmp: Path) -> None:
        self.target, self.tmp = Path(target), Path(tmp)
        self._writer = None
        self._schema = None
        self._closed = False

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (same columns and types as the first chunk) as one row group."""
        import pyarrow as pa  # lazy: most stages never stream a parquet
        import pyarrow.parquet as pq

        if self._closed:
            raise RuntimeError(f"{self.target}: write after the stream was closed")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.tmp, table.schema)
        elif not table.schema.equals(self._schema, check_metadata=False):
            raise ValueError(f"{self.target}: a chunk's columns differ from the first chunk's: {_schema_diff(self._schema, table.schema)}")
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))  # one row group per chunk

    @property
    def columns(self) -> list[str]:
        """The columns written so far (those of the first chunk)."""
        return [] if self._schema is None else list(self._schema.names)

    def close(self) -> None:
        """Write the footer: from now on the file at ``tmp`` is complete and readable."""
        if self._closed:
            return
        if self._writer is None:
            raise ValueError(f"{self.target}: nothing was written")
        self._writer.close()
        self._closed = True

    def discard(self) -> None:
        """Close the file without caring for its content (the caller deletes it)."""
        if self._writer is not None and not self._closed:
            self._writer.close()
        self._closed = True

    def drop_columns(self, columns: list[str]) -> None:
        """Rewrite the stream's file without ``columns``, one row group at a time (memory: one
        row group); the stream is closed afterwards."""
        import pyarrow.parquet as pq

        drop = set(columns)
        if not drop:
            return
        self.close()
        keep = [c for c in self.columns if c not in drop]
        fd, name = tempfile.mkstemp(prefix=_temp_prefix(self.target), suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        rewritten = ParquetStream(self.target, Path(name))
        try:
            source = pq.ParquetFile(self.tmp)
            for i in range(source.num_row_groups):
                # through pandas, so the schema's pandas metadata lists only the kept columns
                rewritten.write(source.read_row_group(i, columns=keep).to_pandas())
            rewritten.close()
            os.replace(rewritten.tmp, self.tmp)
        except BaseException:
            rewritten.discard()
            Path(name).unlink(missing_ok=True)
            raise
        self._schema = rewritten._schema


def _schema_diff(first, other) -> str:
    """The first column whose presence or type differs, for an error message."""
    for name in list(first.names) + [n for n in other.names if n not in first.names]:
        a = first.field(name).type if name in first.names else "absent"
        b = other.field(name).type if name in other.names else "absent"
        if str(a) != str(b):
            return f"column {name!r} is {b} here, {a} in the first chunk"
    return "column order differs"


@contextlib.contextmanager
def parquet_stream(target: str | Path) -> Iterator[ParquetStream]:
    """A :class:`ParquetStream` at a temp name beside ``target`` (:func:`atomic_path`'s scheme,
    so a killed run's leftover is recognised and removed); on success it is renamed over
    ``target``, on an error deleted."""
    with atomic_path(target) as tmp:
        stream = ParquetStream(Path(target), tmp)
        try:
            yield stream
        except BaseException:
            stream.discard()
            raise
        stream.close()
