"""One ``APIRouter`` per resource."""

from __future__ import annotations

from service.api.routes import blocks, health, searches, spaces

__all__ = ["blocks", "health", "searches", "spaces"]
