"""Error types. Every error is one line that names what is wrong and how to fix it."""

from __future__ import annotations


class TrendfactoryError(Exception):
    """Base class: a user-facing problem with a one-line message."""


class ParamsError(TrendfactoryError, ValueError):
    """A bad key, type or value in params.yaml (message names the dotted key path)."""


class DataValidationError(TrendfactoryError, ValueError):
    """Bad input data (message names the file, symbol, column, row and the fix)."""
