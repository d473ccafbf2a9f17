"""Integrity of what a fit leaves on disk: a saved model's ``manifest.json`` and a checkpoint's seal.

A saved model directory holds ``manifest.json``: the size and SHA-256 of every other file in
it, written last by ``TrendModel.save``. ``TrendModel.load`` verifies it before it reads
anything else, so a truncated or zeroed model file is refused with one line instead of being
handed to a C++ parser (LightGBM segfaults on half a ``model.txt``) or, worse, loaded silently
(zeroed bytes inside a ``weights.pt`` tensor). The manifest holds no timestamps and its keys are
sorted, so two identical fits still save byte-identical directories (DVC hashes them).

A trainer checkpoint (``last.pt``, ``best-epochNNN.pt``) is rewritten every epoch, so it gets
a seal of its own instead: ``<name>.json`` beside it with its size, SHA-256 and the run id it
belongs to, written atomically once the checkpoint itself is in place. A checkpoint whose seal
is missing or does not match is never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from trendfactory.errors import ArtifactError
from trendfactory.io import atomic_path

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
SEAL_SUFFIX = ".json"  # last.pt -> last.pt.json
RESTORE = "restore it with `dvc checkout` or retrain with `dvc repro`"
RETRAIN = "retrain it with `dvc repro`"
_CHUNK = 1 << 20  # bytes hashed per read: flat memory for any file size


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, hex SHA-256) of the file at ``path``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


# ---- saved model directories -------------------------------------------------------------------
def _files_in(directory: Path) -> list[str]:
    """Every regular file under ``directory`` but the manifest, as sorted POSIX relative paths."""
    names = (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return sorted(n for n in names if n != MANIFEST_FILE)


def manifest_bytes(directory: Path) -> bytes:
    """The manifest of ``directory`` as it is now: deterministic bytes (sorted keys, no times)."""
    files = {}
    for name in _files_in(directory):
        size, sha = file_digest(directory / name)
        files[name] = {"sha256": sha, "size": size}
    return (json.dumps({"files": files, "version": MANIFEST_VERSION}, indent=1, sort_keys=True) + "\n").encode()


def write_manifest(directory: str | Path) -> None:
    """Write ``directory/manifest.json`` over every file there (call it after the last file)."""
    directory = Path(directory)
    data = manifest_bytes(directory)
    with atomic_path(directory / MANIFEST_FILE) as tmp:
        tmp.write_bytes(data)


def _safe_name(name: object) -> bool:
    """A manifest entry must name a file inside the directory (no absolute paths, no ``..``)."""
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and name != MANIFEST_FILE


def read_manifest(directory: Path) -> dict[str, dict]:
    """``{relative path: {"size", "sha256"}}`` from ``directory/manifest.json``, or ArtifactError
    for a missing, unreadable or malformed one."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: missing, so the files beside it cannot be verified (the model was saved by an older trendfactory, or its save did not finish); {RETRAIN}")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable ({type(exc).__name__}); {RESTORE}") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION or not isinstance(files, dict):
        raise ArtifactError(f"{path}: not a version-{MANIFEST_VERSION} manifest (garbled, or written by another version); {RESTORE}")
    for name, entry in files.items():
        if not _safe_name(name) or not _valid_entry(entry):
            raise ArtifactError(f"{path}: malformed entry {str(name)[:60]!r}; {RESTORE}")
    return files


def _valid_entry(entry: object) -> bool:
    """``{"size": int >= 0, "sha256": 64 hex digits}``."""
    if not isinstance(entry, dict):
        return False
    size, sha = entry.get("size"), entry.get("sha256")
    return isinstance(size, int) and not isinstance(size, bool) and size >= 0 and isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)


def verify_manifest(directory: str | Path) -> None:
    """Raise ArtifactError (one line: the file and the fix) unless every file of ``directory``
    is exactly what its manifest lists: none missing, none changed, none unlisted."""
    directory = Path(directory)
    files = read_manifest(directory)
    for name in sorted(files):
        _verify_file(directory / name, files[name])
    unlisted = [n for n in _files_in(directory) if n not in files]
    if unlisted:
        raise ArtifactError(f"{directory / unlisted[0]}: not listed in {MANIFEST_FILE} (not written by the save); remove it, or restore the directory with `dvc checkout`")


def _verify_file(path: Path, entry: dict) -> None:
    """Size first (no need to hash a truncated file), then the SHA-256."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (listed in {MANIFEST_FILE}); {RESTORE}")
    size = path.stat().st_size
    if size != entry["size"]:
        raise ArtifactError(f"{path}: damaged ({size} bytes, {MANIFEST_FILE} says {entry['size']}); {RESTORE}")
    if file_digest(path)[1] != entry["sha256"]:
        raise ArtifactError(f"{path}: damaged (SHA-256 differs from {MANIFEST_FILE}); {RESTORE}")


# ---- checkpoints ---------------------------------------------------------------------------------
def seal_path(path: Path) -> Path:
    """Where the seal of checkpoint ``path`` lives: ``last.pt`` -> ``last.pt.json``."""
    return path.with_name(path.name + SEAL_SUFFIX)


@contextlib.contextmanager
def sealed_write(target: Path, run_id: str) -> Iterator[Path]:
    """Like :func:`trendfactory.io.atomic_path`, then seal ``target`` for ``run_id``. A crash
    between the two leaves a stale seal, which only makes the checkpoint unusable (never trusted)."""
    with atomic_path(target) as tmp:
        yield tmp
    size, sha = file_digest(target)
    with atomic_path(seal_path(target)) as tmp:
        tmp.write_text(json.dumps({"run_id": run_id, "sha256": sha, "size": size}, sort_keys=True) + "\n")


def check_seal(path: Path, run_id: str) -> None:
    """Raise ArtifactError saying why checkpoint ``path`` cannot be trusted for run ``run_id``:
    missing, no (readable) seal, another run's, or bytes that differ from the seal."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing")
    seal = seal_path(path)
    try:
        doc = json.loads(seal.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no checksum {seal.name} (written by an older version, or interrupted)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: its checksum {seal.name} is unreadable ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not _valid_entry(doc) or not isinstance(doc.get("run_id"), str):
        raise ArtifactError(f"{path}: its checksum {seal.name} is malformed")
    if doc["run_id"] != run_id:
        raise ArtifactError(f"{path}: written by another run (the model, its params or the training data differ)")
    size, sha = file_digest(path)
    if size != doc["size"] or sha != doc["sha256"]:
        raise ArtifactError(f"{path}: damaged (size or SHA-256 differs from {seal.name})")


def remove_sealed(path: Path) -> None:
    """Delete a checkpoint and its seal (either may already be gone)."""
    path.unlink(missing_ok=True)
    seal_path(path).unlink(missing_ok=True)
