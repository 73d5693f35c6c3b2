"""``Annotated`` dependencies shared by the routes: settings, a database session, API-key auth."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.core.config import Settings

__all__ = ["SessionDep", "SettingsDep", "get_session", "get_settings", "require_api_key"]

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The service's NAS_API_KEY (only when one is configured).",
)
_bearer = HTTPBearer(auto_error=False, description="The service's NAS_API_KEY as a bearer token.")


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with (async: no thread hop for a field read)."""
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session for the request, closed afterwards."""
    with request.app.state.sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


async def require_api_key(
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """When NAS_API_KEY is set, require it in X-API-Key or ``Authorization: Bearer``."""
    expected = settings.api_key
    if not expected:
        return
    given = api_key or (bearer.credentials if bearer is not None else None)
    if given and secrets.compare_digest(given.encode(), expected.encode()):
        return
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or wrong API key: send the service's key in the X-API-Key header "
        "or as 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
