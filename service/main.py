"""The FastAPI app: ``create_app(settings)`` builds it; ``service.main:app`` is the default one
(built on first access from the environment)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from nas import __version__
from nas.errors import NasError, NotFoundError
from service.api.deps import require_api_key
from service.api.routes import blocks, health, searches, spaces
from service.cache import ResponseCache
from service.core.config import Settings, get_settings
from service.db import create_db_engine, init_db, make_sessionmaker
from service.middleware import BodyLimitMiddleware

__all__ = ["create_app"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
Start neural-architecture searches and read their results.

`POST /searches` queues a search (the same options as `nas search`); worker processes
(`nas serve`, `nas worker`) run it with the same library function as the CLI, so a search
survives a restart of the service and resumes from its stored trials. Poll
`GET /searches/{id}` for its status and progress, then read `GET /searches/{id}/pareto`.

When the service has an API key (`NAS_API_KEY`), every route requires it, in the `X-API-Key`
header or as `Authorization: Bearer <key>`, except `/health` and this documentation (`/docs`,
`/redoc`, `/openapi.json`: the API's shape, no data; use **Authorize** here to send the key).
Errors are JSON `{"detail": "..."}` whose message says what to fix. This page and `/redoc`
work offline.
"""

TAGS = [
    {"name": "searches", "description": "Submit, follow and cancel searches; read results."},
    {"name": "spaces", "description": "The shipped search spaces."},
    {"name": "blocks", "description": "The attention blocks a space can use."},
    {"name": "health", "description": "Liveness (no API key needed)."},
]


def _loc(loc: Any) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:10]:
        where = _loc(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            ctx = error.get("ctx") or {}
            parts.append(
                f"the body is not valid JSON ({ctx.get('error', 'parse error')} "
                f"at character {error.get('loc', ('', '?'))[-1]})"
            )
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    if len(errors) > 10:
        parts.append(f"... and {len(errors) - 10} more")
    return "invalid request: " + "; ".join(parts)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in raw
        ]
        return JSONResponse(
            status_code=422,
            content=jsonable_encoder({"detail": _validation_message(raw), "errors": errors}),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not read the body (e.g. not UTF-8)
            return JSONResponse(
                status_code=422,
                content={"detail": f"invalid request: {exc.detail}; send UTF-8 JSON text"},
            )
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": str(exc.detail)},
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(NasError)
    async def _nas(_request: Request, exc: NasError) -> JSONResponse:
        code = 404 if isinstance(exc, NotFoundError) else 422
        return JSONResponse(status_code=code, content={"detail": str(exc)})

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc)
        return storage_error(exc) or JSONResponse(
            status_code=503,
            content={"detail": "the service database is unavailable; retry shortly"},
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(PoolTimeout)
    async def _pool_busy(_request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no database connection free: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "the service is busy (no database connection free); retry"},
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(SQLAlchemyError)
    async def _db_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.exception("database error", exc_info=exc)
        return JSONResponse(
            status_code=500, content={"detail": "internal database error; see the service log"}
        )


_STORAGE_ERRORS = {
    "database or disk is full": (507, "the service database's disk is full; free space on it"),
    "No space left on device": (507, "the service database's disk is full; free space on it"),
    "readonly database": (503, "the service database is read-only; make it writable"),
    "Read-only file system": (503, "the service database is read-only; make it writable"),
}


def storage_error(exc: OperationalError) -> JSONResponse | None:
    """A 507 for a full disk and a 503 naming a read-only database, else None. Reads still
    work in both cases; nothing written before is touched."""
    for marker, (code, detail) in _STORAGE_ERRORS.items():
        if marker in str(exc.orig):
            return JSONResponse(
                status_code=code, content={"detail": detail}, headers={"Retry-After": "60"}
            )
    return None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment); creates missing tables."""
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url)
    init_db(engine)
    # /docs and /redoc load Swagger UI and ReDoc from the service itself, not from a CDN, so
    # they render offline (FastAPI's "self-hosting JavaScript and CSS for docs").
    app = FastAPIOffline(
        title="nas",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.pareto_cache = ResponseCache()
    protected = [Depends(require_api_key)]
    errors = {
        401: {"model": _error_model(), "description": "Missing or wrong API key."},
        503: {"model": _error_model(), "description": "The database is unavailable."},
        507: {"model": _error_model(), "description": "The database's disk is full."},
    }
    for router in (searches.router, spaces.router, blocks.router):
        app.include_router(router, dependencies=protected, responses=errors)
    app.include_router(health.router)
    _install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def _error_model() -> type:
    from service.schemas import ErrorResponse

    return ErrorResponse


def __getattr__(name: str) -> Any:
    """``service.main.app``: the app for the current environment, built on first access."""
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)
