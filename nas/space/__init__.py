"""Search spaces: the YAML schema, loading, sampling into an :class:`Arch`, building models.

The data types (:class:`Arch`, :class:`SearchSpace`) and the errors import without torch, so
a Ray worker that only receives them (a trial function that does not train) stays light;
loading (validates blocks), sampling and building load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas._lazy import lazy_getattr
from nas.space.arch import Arch, ArchStage
from nas.space.errors import SpaceError
from nas.space.space import SearchSpace, StageChoices

if TYPE_CHECKING:
    from nas.space.build import build_model
    from nas.space.loader import list_spaces, load_space, parse_space, space_path, spaces_dirs
    from nas.space.sampling import arch_from_params, default_arch, suggest

__all__ = [
    "Arch",
    "ArchStage",
    "SearchSpace",
    "SpaceError",
    "StageChoices",
    "arch_from_params",
    "build_model",
    "default_arch",
    "list_spaces",
    "load_space",
    "parse_space",
    "space_path",
    "spaces_dirs",
    "suggest",
]

_LAZY = {
    "build_model": "build",
    "list_spaces": "loader",
    "load_space": "loader",
    "parse_space": "loader",
    "space_path": "loader",
    "spaces_dirs": "loader",
    "arch_from_params": "sampling",
    "default_arch": "sampling",
    "suggest": "sampling",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
