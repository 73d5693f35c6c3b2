"""One ``APIRouter`` per resource; ``export`` is mounted under ``searches`` (same prefix, auth)."""

from __future__ import annotations

from service.api.routes import blocks, export, health, searches, spaces

__all__ = ["blocks", "export", "health", "searches", "spaces"]

searches.router.include_router(export.router)
