"""A database that is really down answers 503 with Retry-After (never 500, never 429)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.db import create_db_engine, make_sessionmaker


def _nothing_listening() -> str:
    """A PostgreSQL URL on a loopback port where no server listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/nas"


def test_requests_get_503_while_the_database_is_unreachable(app: Any) -> None:
    down = create_db_engine(_nothing_listening(), connect_args={"connect_timeout": 2})
    app.state.engine, app.state.sessionmaker = down, make_sessionmaker(down)
    with TestClient(app) as client:
        for method, path, body in [
            ("POST", "/searches", {"space": "tiny", "dataset": "synthetic", "budget": 2}),
            ("GET", "/searches", None),
            ("GET", "/searches/s0/trials", None),
            ("POST", "/searches/s0/cancel", None),
        ]:
            response = client.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"]
            assert "unavailable" in response.json()["detail"]
        assert client.get("/health").status_code == 503
    down.dispose()
