"""``/spaces``: the shipped search spaces."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from nas.errors import NasError
from nas.jsonable import jsonable
from service.schemas import ErrorResponse, SpacePublic, SpacesPublic, SpaceSummary

__all__ = ["router"]

router = APIRouter(prefix="/spaces", tags=["spaces"])


def _size(space: Any) -> float | None:
    try:
        size = float(space.size())
    except (NasError, ValueError, TypeError, OverflowError, AttributeError):
        return None
    return size if math.isfinite(size) else None


@router.get("", response_model=SpacesPublic, summary="List search spaces")
def list_spaces() -> SpacesPublic:
    """The spaces shipped in search_spaces/ (usable by name in POST /searches)."""
    from nas.space import list_spaces as names
    from nas.space import load_space

    data = []
    for name in names():
        try:
            space = load_space(name)
        except NasError as exc:
            data.append(SpaceSummary(name=name, error=str(exc), link=f"/spaces/{name}"))
            continue
        data.append(
            SpaceSummary(
                name=name,
                backbone=str(space.backbone),
                input_shape=[int(v) for v in space.input_shape],
                num_stages=len(space.stages),
                size=_size(space),
                link=f"/spaces/{name}",
            )
        )
    return SpacesPublic(data=data, count=len(data))


@router.get(
    "/{name}",
    response_model=SpacePublic,
    summary="Get a search space",
    responses={
        404: {"model": ErrorResponse, "description": "No shipped space with that name."},
        422: {"model": ErrorResponse, "description": "The shipped file does not load."},
    },
)
def get_space(
    name: Annotated[str, Path(max_length=100, description="A name from GET /spaces.")],
) -> SpacePublic:
    """A shipped space in full: backbone, input shape, stages and their attention choices."""
    from nas.space import list_spaces as names
    from nas.space import load_space

    available = names()
    if name not in available:
        raise HTTPException(
            status_code=404,
            detail=f"unknown space {name!r}; shipped spaces: {', '.join(available)}",
        )
    try:
        space = load_space(name)
    except NasError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return SpacePublic(name=name, size=_size(space), document=jsonable(space.to_dict()))
