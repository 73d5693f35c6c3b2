"""``/health``: liveness and database reachability (never needs the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nas import __version__
from service import crud
from service.api.deps import SessionDep
from service.schemas import Health

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    summary="Health check",
    responses={503: {"model": Health, "description": "The database is unreachable."}},
)
def health(session: SessionDep, response: Response) -> Health:
    """`ok` with queue counts when the database answers; 503 `degraded` otherwise."""
    try:
        session.execute(text("SELECT 1"))
        counts = crud.count_by_status(session)
    except SQLAlchemyError:
        response.status_code = 503
        return Health(status="degraded", database="unreachable", version=__version__)
    return Health(
        status="ok",
        database="ok",
        version=__version__,
        queued=counts.get("queued", 0),
        running=counts.get("running", 0),
    )
