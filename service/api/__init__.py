"""HTTP layer: dependencies and one router per resource."""

from __future__ import annotations

__all__: list[str] = []
