"""Faults the service survives, counted: each scenario runs real processes on loopback
(``nas serve``, its workers, local Ray, PostgreSQL) and becomes one row of a table
(scenario, expected, observed, lost, duplicated, pass). Exit status 1 when a row fails.

    python bench/faults.py                       # every scenario (minutes)
    python bench/faults.py --only queue hostile  # some of them
    python bench/faults.py --list

Scenarios that need root (a tmpfs or a read-only bind mount) or PostgreSQL binaries
(``initdb``, ``pg_ctl``) report ``skipped`` with the reason when those are not there. The
PostgreSQL outage uses a throwaway cluster of its own (a temporary directory, a free port),
never a running one.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

# Run as a script, this folder would come first on sys.path and bench/service.py would hide
# the ``service`` package: it goes last instead (the fault_* modules are found there).
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE] + [_HERE]

import fault_disk  # noqa: E402
import fault_processes  # noqa: E402
import fault_stores  # noqa: E402
import fault_tracking  # noqa: E402
from fault_common import SEARCH, Row, Server, service_env  # noqa: E402

# --------------------------------------------------------------------------- scenarios


def concurrent_posts(server_url: str, *, posts: int = 50) -> Counter[str]:
    """``posts`` POST /searches released at once; counts ``status`` and ``status+retry``."""
    barrier = threading.Barrier(posts)
    results: list[str] = []
    lock = threading.Lock()

    def post(client: httpx.Client) -> None:
        barrier.wait()
        response = client.post("/searches", json={**SEARCH, "budget": 2})
        code = str(response.status_code)
        if response.status_code == 429 and response.headers.get("retry-after"):
            code += "+retry-after"
        with lock:
            results.append(code)

    limits = httpx.Limits(max_connections=posts, max_keepalive_connections=posts)
    with httpx.Client(base_url=server_url, timeout=120, limits=limits) as client:
        threads = [threading.Thread(target=post, args=(client,)) for _ in range(posts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return Counter(results)


def queue_limit(database_url: str, label: str, home: Path) -> Row:
    """50 concurrent POSTs against NAS_MAX_QUEUED=5 on an API without workers."""
    env = service_env(home, DATABASE_URL=database_url, NAS_MAX_QUEUED="5")
    with Server(env, workers=0) as server:
        codes = concurrent_posts(server.url)
        queued = httpx.get(f"{server.url}/searches", params={"status": "queued"}).json()["count"]
    observed = ", ".join(f"{n} x {code}" for code, n in sorted(codes.items()))
    return Row(
        scenario=f"50 concurrent POST /searches, NAS_MAX_QUEUED=5 ({label})",
        expected="5 x 202, 45 x 429 with Retry-After, 5 queued",
        observed=f"{observed}; {queued} queued",
        lost=max(5 - queued, 0),
        duplicated=max(queued - 5, 0),
        passed=codes == Counter({"202": 5, "429+retry-after": 45}) and queued == 5,
    )


_LEVELS = "abcdefghij"
BILLION_LAUGHS = "\n".join(
    ["name: laughs", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]" for a, b in itertools.pairwise(_LEVELS)]
    + ["backbone: *j"]
)
"""A space whose aliases expand to 9**10 strings (a YAML "billion laughs")."""

HOSTILE: dict[str, Callable[[], bytes]] = {
    "10 MB body": lambda: b'{"space": "tiny", "name": "' + b"x" * 10_000_000 + b'"}',
    "JSON nested 100,000 deep": lambda: b'{"space": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "billion-laughs YAML space": lambda: httpx.Request(
        "POST", "/", json={"space": BILLION_LAUGHS}
    ).read(),
    "path-traversal space name": lambda: b'{"space": "../../../../etc/passwd"}',
    "space name with NUL": lambda: b'{"space": "tiny\\u0000/../x"}',
}


def hostile_input(home: Path, *, limit_s: float = 5.0, limit_mb: float = 200.0) -> Row:
    """Hostile bodies: each answered 4xx within ``limit_s``; memory and /health stay fine."""
    env = service_env(home, DATABASE_URL=f"sqlite:///{home / 'hostile.db'}")
    answers, slow, bad = [], [], []
    with Server(env, workers=0) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        # A first inline document imports the space parser (torch included): not counted.
        c.post("/searches", json={"space": "name: warm\nbackbone: 1\n"})
        before = server.peak_rss_mb()
        for name, make in HOSTILE.items():
            started = time.monotonic()
            try:
                response = c.post(
                    "/searches", content=make(), headers={"content-type": "application/json"}
                )
                code = response.status_code
            except httpx.HTTPError as exc:  # a server that drops the connection fails the row
                code = type(exc).__name__
            took = time.monotonic() - started
            answers.append(f"{name}: {code} in {took:.2f} s")
            if not (isinstance(code, int) and 400 <= code < 500):
                bad.append(name)
            if took > limit_s:
                slow.append(name)
        grew = server.peak_rss_mb() - before
        healthy = c.get("/health").status_code == 200
    return Row(
        scenario="hostile bodies: " + ", ".join(HOSTILE),
        expected=f"each 4xx in < {limit_s:g} s, peak memory + < {limit_mb:g} MB, /health 200",
        observed="; ".join(answers)
        + f"; peak memory +{grew:.0f} MB; /health "
        + ("200" if healthy else "down"),
        passed=not bad and not slow and grew < limit_mb and healthy,
    )


# --------------------------------------------------------------------------- table


def postgres_admin_url() -> str | None:
    """The PostgreSQL used for the queue scenario (NAS_TEST_POSTGRES or 127.0.0.1:5432)."""
    return os.environ.get(
        "NAS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


@contextlib.contextmanager
def scratch_postgres_database(admin_url: str) -> Iterator[str]:
    """A new database on ``admin_url``'s server, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"nas_faults_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _queue_sqlite(home: Path) -> Row:
    return queue_limit(f"sqlite:///{home / 'queue.db'}", "SQLite", home)


def _queue_postgres(home: Path) -> Row:
    admin = postgres_admin_url()
    try:
        with scratch_postgres_database(admin) as url:
            return queue_limit(url, "PostgreSQL", home)
    except Exception as exc:
        if "connection" not in str(exc).lower():
            raise
        return Row("50 concurrent POSTs (PostgreSQL)", "-", f"no PostgreSQL: {exc}", passed=None)


SCENARIOS: dict[str, Callable[[Path], Row]] = {
    "queue": _queue_sqlite,
    "queue-pg": _queue_postgres,
    "hostile": hostile_input,
    "full-disk": fault_disk.full_disk,
    "read-only": fault_disk.read_only,
    "postgres-outage": fault_processes.postgres_outage,
    "worker-kill": fault_processes.worker_sigkill,
    "mlflow-outage": fault_tracking.mlflow_outage,
    "resources": fault_processes.missing_resources,
    "corrupt-cache": fault_stores.corrupt_cache_entry,
    "truncated-study": fault_stores.truncated_study,
}


def render(rows: list[Row]) -> str:
    """The table as Markdown."""
    lines = [
        "| scenario | expected | observed | lost | duplicated | pass |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row.scenario, row.expected, row.observed, row.lost, row.duplicated, row.verdict]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="scenarios to run")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    rows = []
    for name in args.only or list(SCENARIOS):
        with tempfile.TemporaryDirectory(prefix=f"nasfault-{name}-") as tmp:
            try:
                row = SCENARIOS[name](Path(tmp))
            except Exception as exc:  # a scenario that crashes is a failed row, not a crash
                row = Row(name, "-", f"crashed: {type(exc).__name__}: {exc}"[:300])
        print(f"{row.verdict:7} {row.scenario}: {row.observed}", file=sys.stderr, flush=True)
        rows.append(row)
    load = os.getloadavg()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
    )
    print(render(rows))
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
