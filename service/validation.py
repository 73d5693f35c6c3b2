"""Checks of a search request beyond its schema: the space (shipped name or inline document,
parsed safely), the service's limits, and the data folder. Each failure is a
:class:`RequestError` whose message says what to fix (the API answers 422)."""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath
from typing import Any

from nas.errors import NasError
from nas.workspace import home
from service.core.config import Settings
from service.schemas import SearchCreate

__all__ = ["MAX_SPACE_NODES", "RequestError", "build_config", "resolve_space", "shipped_spaces"]

log = logging.getLogger(__name__)

MAX_SPACE_NODES = 20_000
"""An inline space document may hold at most this many values (YAML aliases expanded)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class RequestError(NasError, ValueError):
    """A search request the service cannot run; the message says what to fix."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def shipped_spaces() -> list[str]:
    """Names of the spaces in search_spaces/."""
    from nas.space import list_spaces

    return list(list_spaces())


def _count_nodes(value: Any, limit: int) -> int:
    """Values in ``value`` counting shared (aliased) ones each time; stops past ``limit``."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return count


def _load_text(document: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(document)
    except yaml.YAMLError as exc:
        raise RequestError(
            f"space: the inline document is not valid YAML/JSON: {exc}", field="space"
        ) from exc
    if not isinstance(data, dict):
        raise RequestError(
            "space: an inline document must be a mapping (backbone, stages, ...), "
            f"got {type(data).__name__}",
            field="space",
        )
    return data


def resolve_space(space: str | dict[str, Any]) -> tuple[str, str | dict[str, Any]]:
    """Validate the request's space; returns ``(display name, value for the search config)``.

    A string without line breaks is a shipped space name (no paths: only names listed by
    ``nas.space.list_spaces()`` are accepted); a string with line breaks is YAML/JSON text and
    a JSON object is a document, both parsed by ``nas.space.parse_space`` (``yaml.safe_load``).
    """
    from nas.space import load_space, parse_space

    if isinstance(space, str) and "\n" not in space and not space.lstrip().startswith("{"):
        name = space.strip()
        names = shipped_spaces()
        if not _NAME.match(name) or name not in names:
            raise RequestError(
                f"space: unknown space {space[:100]!r}; use one of {', '.join(names)} "
                "(GET /spaces) or send an inline space document",
                field="space",
            )
        try:
            load_space(name)
        except NasError as exc:
            raise RequestError(f"space: shipped space {name!r} does not load: {exc}") from exc
        return name, name
    document = _load_text(space) if isinstance(space, str) else space
    if _count_nodes(document, MAX_SPACE_NODES) > MAX_SPACE_NODES:
        raise RequestError(
            f"space: the inline document has more than {MAX_SPACE_NODES} values "
            "(YAML aliases count each time they are used); make it smaller",
            field="space",
        )
    try:
        parsed = parse_space(document, source="<inline>")
    except (NasError, ValueError, TypeError, KeyError) as exc:
        raise RequestError(f"space: invalid inline space: {exc}", field="space") from exc
    except Exception as exc:  # parse_space should only raise SpaceError; never answer 500
        log.exception("parse_space failed unexpectedly")
        raise RequestError(f"space: invalid inline space: {exc}", field="space") from exc
    name = str(getattr(parsed, "name", None) or "<inline>")
    return name[:200], document


def _data_dir(value: str, settings: Settings) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value or "\x00" in value:
        raise RequestError(
            f"data_dir: {value!r} must be a relative folder inside the service's data root "
            "(no absolute path, no '..')",
            field="data_dir",
        )
    root = Path(settings.data_root) if settings.data_root else home() / "data"
    return str(root.joinpath(*path.parts))


def build_config(request: SearchCreate, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The space's display name and the ``SearchConfig`` fields the worker will run.

    Raises :class:`RequestError` for a bad space or a request above the service's limits.
    """
    if request.budget > settings.max_budget:
        raise RequestError(
            f"budget: {request.budget} is above this service's limit of {settings.max_budget} "
            f"trials (NAS_MAX_BUDGET); ask for at most {settings.max_budget}",
            field="budget",
        )
    if request.concurrency is not None and request.concurrency > settings.max_concurrency:
        raise RequestError(
            f"concurrency: {request.concurrency} is above this service's limit of "
            f"{settings.max_concurrency} (NAS_MAX_CONCURRENCY)",
            field="concurrency",
        )
    if request.epochs is not None and request.epochs > settings.max_epochs:
        raise RequestError(
            f"epochs: {request.epochs} is above this service's limit of "
            f"{settings.max_epochs} (NAS_MAX_EPOCHS)",
            field="epochs",
        )
    space_name, space = resolve_space(request.space)
    config = request.model_dump(exclude_none=True)
    config["space"] = space
    if request.data_dir is not None:
        config["data_dir"] = _data_dir(request.data_dir, settings)
    return space_name, config
