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
