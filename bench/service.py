"""Load on the REST service over loopback: GETs of a Pareto front of a 500-trial search.

Seeds the service database directly (one completed search with N trials), starts
``nas serve --workers 0`` (uvicorn, API only) on a free loopback port, then runs R GETs with
C concurrent clients and prints p50/p90/p99/max latency, throughput and errors per endpoint
and database, side by side. Goal: p99 under 50 ms on /pareto, no errors.

    python bench/service.py                       # SQLite and (if reachable) PostgreSQL
    python bench/service.py --requests 2000 --concurrency 20 --trials 500 --no-postgres
    python bench/service.py --trials 10000        # the 10,000-trial search of docs/faults.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# ``service`` package: drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def seed(database_url: str, trials: int, seed_value: int = 0) -> str:
    """One completed search with ``trials`` complete trials; returns its id."""
    from service import crud
    from service.db import create_db_engine, init_db, make_sessionmaker
    from service.models import Search

    engine = create_db_engine(database_url)
    init_db(engine)
    rng = random.Random(seed_value)
    search_id = "sbench" + uuid.uuid4().hex[:4]
    with make_sessionmaker(engine)() as session:
        crud.create_search(
            session,
            search_id=search_id,
            config={"space": "tiny", "budget": trials, "dataset": "synthetic"},
            space_name="tiny",
            name="bench",
            budget=trials,
            objectives=["accuracy", "latency_ms"],
        )
        records = []
        for number in range(trials):
            latency = rng.uniform(0.3, 5.0)
            accuracy = min(1.0, max(0.0, 0.5 + 0.1 * latency**0.5 + rng.gauss(0, 0.08)))
            stages = [{"attention": rng.choice(["none", "se", "eca", "ca"]), "hparams": {}}] * 4
            records.append(
                {
                    "number": number,
                    "state": "COMPLETE",
                    "params": {
                        f"stage{i}.attention": s["attention"] for i, s in enumerate(stages)
                    },
                    "arch": {"stages": stages},
                    "arch_id": uuid.uuid4().hex[:12],
                    "values": {"accuracy": accuracy, "latency_ms": latency},
                    "metrics": {
                        "accuracy": accuracy,
                        "latency_ms": latency,
                        "params": rng.randint(10_000, 3_000_000),
                        "flops": rng.randint(10**6, 10**9),
                        "accuracy_per_epoch": [accuracy] * 3,
                    },
                    "feasible": True,
                    "mlflow_run_id": uuid.uuid4().hex,
                }
            )
        crud.upsert_trials(session, search_id=search_id, records=records)
        crud.refresh_front(session, search_id=search_id)
        search = session.get(Search, search_id)
        search.status = "completed"
        session.commit()
    engine.dispose()
    return search_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nas",
            "serve",
            "--workers",
            "0",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("the server did not start")


class _Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: it costs far less CPU than a
    full client, so on a small machine the figures measure the server, not the client."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, path: str, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` GETs of ``path`` from ``concurrency`` keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))
    host, port = url.removeprefix("http://").split(":")
    connections = [_Connection(host, int(port)) for _ in range(concurrency)]
    for conn in connections:  # warm-up, not counted
        await conn.get(path)

    async def one_client(conn: _Connection) -> None:
        nonlocal errors
        for _ in queue:
            start = time.perf_counter()
            try:
                ok = await conn.get(path) == 200
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
                conn.close()
                conn.writer = None
            latencies.append((time.perf_counter() - start) * 1000)
            errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in connections))
    wall = time.perf_counter() - start
    for conn in connections:
        conn.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    return {
        "n": len(latencies),
        "p50": statistics.median(latencies),
        "p90": pct(90),
        "p99": pct(99),
        "max": latencies[-1],
        "rps": len(latencies) / wall,
        "errors": errors,
    }


def make_postgres() -> tuple[str, Any] | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"nas_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        return None

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="nas-bench-"))
    os.environ["NAS_HOME"] = str(home)
    databases: list[tuple[str, str, Any]] = [("sqlite", f"sqlite:///{home / 'service.db'}", None)]
    if not args.no_postgres:
        made = make_postgres()
        if made is None:
            print("(PostgreSQL on 127.0.0.1:5432 not reachable: SQLite only)")
        else:
            databases.append(("postgresql", made[0], made[1]))

    rows = []
    try:
        for db_name, url, _ in databases:
            search_id = seed(url, args.trials)
            env = {**os.environ, "DATABASE_URL": url, "NAS_HOME": str(home)}
            proc, base = start_server(env)
            try:
                front = httpx.get(f"{base}/searches/{search_id}/pareto").json()["count"]
                last = max(args.trials - 100, 0)
                paths = [
                    (f"/pareto ({front} pts)", f"/searches/{search_id}/pareto"),
                    ("/searches/{id}", f"/searches/{search_id}"),
                    ("/trials?limit=100", f"/searches/{search_id}/trials?limit=100"),
                    ("/trials last page", f"/searches/{search_id}/trials?limit=100&offset={last}"),
                    ("/health", "/health"),
                ]
                for label, path in paths:
                    stats = asyncio.run(load(base, path, args.requests, args.concurrency))
                    rows.append((db_name, label, stats))
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    finally:
        for _, _, drop in databases:
            if drop is not None:
                drop()
        shutil.rmtree(home, ignore_errors=True)

    print(
        f"\n{args.requests} GETs per row, {args.concurrency} concurrent clients, "
        f"search of {args.trials} trials, loopback, uvicorn 1 process; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
    )
    header = f"{'database':<11} {'endpoint':<20} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
    header += f"{'max ms':>8} {'req/s':>7} {'errors':>6} {'p99 / sqlite':>12}"
    print(header)
    print("-" * len(header))
    base_p99 = {label: s["p99"] for db, label, s in rows if db == "sqlite"}
    for db_name, label, s in rows:
        ratio = s["p99"] / base_p99[label] if label in base_p99 else float("nan")
        print(
            f"{db_name:<11} {label:<20} {s['p50']:8.1f} {s['p90']:8.1f} {s['p99']:8.1f} "
            f"{s['max']:8.1f} {s['rps']:7.0f} {s['errors']:6d} {ratio:12.2f}"
        )


if __name__ == "__main__":
    main()
