"""Service configuration."""

from __future__ import annotations

from service.core.config import Settings, get_settings

__all__ = ["Settings", "get_settings"]
