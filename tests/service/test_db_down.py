"""A database that is really down answers 503 with Retry-After (never 500, never 429); a full
or read-only one is named as such; nas serve refuses a NAS_HOME it cannot write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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


def test_a_full_or_read_only_database_is_named_in_the_answer(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from service import crud

    body = {"space": "tiny", "dataset": "synthetic", "budget": 2}
    for reason, code, words in [
        ("database or disk is full", 507, "disk is full"),
        ("attempt to write a readonly database", 503, "read-only"),
    ]:

        def fail(*_args: Any, reason: str = reason, **_kwargs: Any) -> None:
            raise OperationalError("INSERT ...", {}, sqlite3.OperationalError(reason))

        monkeypatch.setattr(crud, "create_search", fail)
        response = client.post("/searches", json=body)
        assert response.status_code == code, response.text
        assert words in response.json()["detail"] and response.headers["retry-after"]
        assert client.get("/searches").status_code == 200


def test_serve_refuses_a_nas_home_it_cannot_write_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NAS_HOME", str(blocker / "home"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'service.db'}")
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: NAS_HOME {blocker / 'home'} is not writable")
    assert "\n" not in err


def test_an_exhausted_connection_pool_answers_503(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from service import crud

    def busy(*_args: Any, **_kwargs: Any) -> None:
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")

    monkeypatch.setattr(crud, "list_searches", busy)
    response = client.get("/searches")
    assert response.status_code == 503 and response.headers["retry-after"]
    assert "busy" in response.json()["detail"]
