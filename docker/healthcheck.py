"""Health checks of the nas containers; exit status 0 means healthy.

    python healthcheck.py http URL        the URL answers 2xx (MLflow's and the API's /health)
    python healthcheck.py raylet          a Ray node (raylet process) runs in this container
    python healthcheck.py database URL    the SQLAlchemy URL answers ``SELECT 1``

Only the standard library and SQLAlchemy are used, so a check starts fast and needs no
tool (curl, pgrep) in the image.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path


def check_http(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def check_raylet() -> bool:
    """Whether a raylet (the process of a Ray node) runs here (Linux ``/proc``)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        # "pid (comm) state ...": a zombie (Z) or dead (X) raylet does not count.
        name, _, rest = text.partition(") ")
        if name.split("(", 1)[-1] == "raylet" and rest[:1] not in ("Z", "X"):
            return True
    return False


def check_database(url: str) -> bool:
    """Whether the database at the SQLAlchemy ``url`` answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
        engine = create_engine(url, connect_args=args)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def main(argv: list[str]) -> int:
    """Run the check named by ``argv[0]``; 0 healthy, 1 unhealthy, 2 bad usage."""
    if argv[:1] == ["http"] and len(argv) == 2:
        return 0 if check_http(argv[1]) else 1
    if argv == ["raylet"]:
        return 0 if check_raylet() else 1
    if argv[:1] == ["database"] and len(argv) == 2:
        return 0 if check_database(argv[1]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
