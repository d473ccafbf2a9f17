"""Error types. Every error is one line that names what is wrong and how to fix it."""

from __future__ import annotations


class TrendfactoryError(Exception):
    """Base class: a user-facing problem with a one-line message."""


class ParamsError(TrendfactoryError, ValueError):
    """A bad key, type or value in params.yaml (message names the dotted key path)."""


class DataValidationError(TrendfactoryError, ValueError):
    """Bad input data (message names the file, symbol, column, row and the fix)."""


class ArtifactError(TrendfactoryError):
    """A saved model or checkpoint that is missing, damaged or unverifiable (message names the
    file and the fix: restore it, or retrain)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, shortened: a library's multi-line error quoted
    inside one of ours keeps ours one line."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else ""
