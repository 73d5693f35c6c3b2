"""Search spaces: the YAML schema, loading, sampling into an :class:`Arch`, building models."""

from __future__ import annotations

from nas.space.arch import Arch, ArchStage
from nas.space.build import build_model
from nas.space.errors import SpaceError
from nas.space.loader import list_spaces, load_space, parse_space, space_path, spaces_dirs
from nas.space.sampling import arch_from_params, default_arch, suggest
from nas.space.space import SearchSpace, StageChoices

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
