"""User-facing errors: the CLI prints these without a traceback, the service maps them to 4xx."""

from __future__ import annotations

__all__ = ["NasError", "NotFoundError"]


class NasError(Exception):
    """An error caused by the user's input; its message says what to fix."""


class NotFoundError(NasError, LookupError):
    """A named thing (search, trial, space, block) does not exist."""
