"""The error a malformed search space raises."""

from __future__ import annotations

from nas.errors import NasError

__all__ = ["SpaceError"]


class SpaceError(NasError, ValueError):
    """A search space (file, inline document or architecture) is invalid.

    The message reads ``"<source>: <field path>: <reason>"``, e.g.
    ``"search_spaces/my.yaml: stages[1].hparams.sa.groups: ..."``.
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source, self.field, self.reason = source, field, reason
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {reason}")
