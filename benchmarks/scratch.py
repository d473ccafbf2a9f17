"""A scratch working directory for benchmarks that run a stage's ``main_body``: it links the
project's window store (data/windows) and is removed afterwards, so the project's models/,
predictions and studies are never touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def linked_store(prefix: str) -> Iterator[Path]:
    """chdir into a fresh directory under benchmarks/ whose data/windows links the project's."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=ROOT / "benchmarks"))
    (scratch / "data").mkdir()
    (scratch / "data" / "windows").symlink_to(ROOT / "data" / "windows")
    here = Path.cwd()
    os.chdir(scratch)
    try:
        yield scratch
    finally:
        os.chdir(here)
        shutil.rmtree(scratch, ignore_errors=True)
