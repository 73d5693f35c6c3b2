"""Process-level fault scenarios of bench/faults.py: a PostgreSQL outage mid-search and
workers SIGKILLed during a trial and during confirmation, with real searches (space tiny,
synthetic data, one epoch) run by ``nas serve`` with two workers and local Ray."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from fault_common import SEARCH, Row, Server, free_port, service_env

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OUTAGE_S = 20.0


def _as_postgres(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` user when this process is root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or (str(PG_BIN / name) if (PG_BIN / name).exists() else None)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed")
    return found


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own in ``root`` on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run(_as_postgres(list(argv)), check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            for folder in (self.data.parent, self.data):
                os.chmod(folder, 0o755)
            shutil.chown(self.data, "postgres", "postgres")
        self._run(_pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.data / "server.log")
        self._run(
            _pg_tool("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )

    def stop(self) -> None:
        self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def ray_tmpdir() -> Iterator[str]:
    """A short RAY_TMPDIR (Ray's socket paths must fit); Ray processes left there are killed."""
    path = tempfile.mkdtemp(prefix="nfr")
    try:
        yield path
    finally:
        deadline = time.monotonic() + 15
        while _mentioning(path) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in _mentioning(path):  # only processes this scenario started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def _mentioning(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
    return pids


def finished_trials(client: httpx.Client, search_id: str) -> dict[int, Any]:
    """The search's finished trials by number: complete, or failed on their own (not a trial
    interrupted by a killed worker, which the search runs again under a new number)."""
    page = client.get(f"/searches/{search_id}/trials", params={"limit": 1000}).json()
    return {
        t["number"]: t
        for t in page["data"]
        if t["state"] == "COMPLETE" or (t["state"] == "FAIL" and not t["interrupted"])
    }


def wait_for(
    client: httpx.Client, search_id: str, ok: Callable[[dict[str, Any]], bool], s: float
) -> dict[str, Any] | None:
    """The search's body once ``ok(body)``, or None after ``s`` seconds."""
    deadline = time.monotonic() + s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = client.get(f"/searches/{search_id}")
            if response.status_code == 200 and ok(body := response.json()):
                return body
        time.sleep(0.5)
    return None


def is_finished(body: dict[str, Any]) -> bool:
    """Whether a search body has a final status."""
    return body["status"] in ("completed", "failed", "cancelled")


def outcome(
    client: httpx.Client, search_id: str, before: dict[int, Any], budget: int
) -> tuple[int, int, str]:
    """(lost, duplicated, detail) of a finished search against the trials seen ``before``."""
    page = client.get(f"/searches/{search_id}/trials", params={"limit": 1000}).json()
    numbers = [t["number"] for t in page["data"]]
    after = finished_trials(client, search_id)
    changed = [n for n, t in before.items() if n not in after or after[n]["values"] != t["values"]]
    lost = len(changed) + max(budget - len(after), 0)
    interrupted = sum(t["interrupted"] for t in page["data"])
    detail = f"{len(after)}/{budget} trials finished ({interrupted} interrupted, run again)"
    return lost, len(numbers) - len(set(numbers)), detail


def postgres_outage(home: Path) -> Row:
    """PostgreSQL stopped for 20 s mid-search, then started again."""
    name = f"PostgreSQL stopped {OUTAGE_S:g} s mid-search, then started"
    expected = "search completes; API 503 while down, 200 after; 0 lost, 0 duplicated"
    try:
        pg = ThrowawayPostgres(home)
        pg.init()
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        return Row(name, expected, f"skipped: no throwaway PostgreSQL ({exc})", "-", "-", None)
    budget = 8
    pg.start()
    try:
        with ray_tmpdir() as ray_tmp:
            env = service_env(
                home, DATABASE_URL=pg.url, RAY_TMPDIR=ray_tmp, NAS_LEASE_SECONDS="60"
            )
            with (
                Server(env, workers=2) as server,
                httpx.Client(base_url=server.url, timeout=10) as client,
            ):
                body = {**SEARCH, "budget": budget, "confirm_seeds": 0}
                search_id = client.post("/searches", json=body).json()["id"]
                deadline = time.monotonic() + 300
                while len(before := finished_trials(client, search_id)) < 2:
                    if time.monotonic() > deadline:
                        return Row(name, expected, "no 2 trials in 300 s: " + server.tail(300))
                    time.sleep(0.5)
                pg.stop()
                codes: dict[int | str, int] = {}
                stopped = time.monotonic()
                while time.monotonic() - stopped < OUTAGE_S:
                    for method, path in (
                        ("GET", f"/searches/{search_id}"),
                        ("GET", "/health"),
                        ("POST", "/searches"),
                    ):
                        try:
                            code: int | str = client.request(
                                method, path, json=body if method == "POST" else None
                            ).status_code
                        except httpx.HTTPError as exc:
                            code = type(exc).__name__
                        codes[code] = codes.get(code, 0) + 1
                    time.sleep(0.5)
                pg.start()
                after_code = client.get(f"/searches/{search_id}").status_code
                done = wait_for(
                    client, search_id, lambda b: b["status"] in ("completed", "failed"), 600
                )
                if done is None:
                    return Row(name, expected, "not finished in 600 s: " + server.tail(300))
                lost, duplicated, detail = outcome(client, search_id, before, budget)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop()
    down = ", ".join(f"{n} x {c}" for c, n in sorted(codes.items(), key=str))
    observed = f"{done['status']}, {detail}; while down: {down}; after: {after_code}"
    passed = (
        done["status"] == "completed"
        and set(codes) == {503}
        and after_code == 200
        and lost == duplicated == 0
    )
    return Row(name, expected, observed, lost, duplicated, passed)


def _worker_pids(server: Server) -> list[int]:
    assert server.proc is not None
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
    pids = [int(p) for p in children.read_text().split()]
    return [p for p in pids if b"worker" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _kill_running_worker(client: httpx.Client, search_id: str, server: Server) -> bool:
    """SIGKILL the worker process that holds the search (its pid is in the worker id)."""
    holder = client.get(f"/searches/{search_id}").json().get("worker_id") or ""
    parts = holder.split(":")
    if len(parts) < 2 or int(parts[1]) not in _worker_pids(server):
        return False
    os.kill(int(parts[1]), signal.SIGKILL)
    return True


def worker_sigkill(home: Path) -> Row:
    """The worker running a search SIGKILLed during a trial, then again during confirmation."""
    name = "worker SIGKILLed during a trial, then during confirmation"
    expected = "search completes, confirmed front; 0 lost, 0 duplicated"
    budget = 6
    with ray_tmpdir() as ray_tmp:
        env = service_env(home, RAY_TMPDIR=ray_tmp, NAS_LEASE_SECONDS="20")
        with (
            Server(env, workers=2) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            body = {**SEARCH, "budget": budget, "confirm_seeds": 1, "confirm_max": 2}
            search_id = client.post("/searches", json=body).json()["id"]
            deadline = time.monotonic() + 300
            while len(before := finished_trials(client, search_id)) < 2:
                if time.monotonic() > deadline:
                    return Row(name, expected, "no 2 trials in 300 s: " + server.tail(300))
                time.sleep(0.3)
            kills = int(_kill_running_worker(client, search_id, server))
            confirming = wait_for(
                client,
                search_id,
                lambda b: b["progress"]["phase"] == "confirming" and b["status"] == "running",
                600,
            )
            if confirming is not None:
                kills += int(_kill_running_worker(client, search_id, server))
            done = wait_for(client, search_id, is_finished, 600)
            if done is None:
                return Row(name, expected, "not finished in 600 s: " + server.tail(300))
            lost, duplicated, detail = outcome(client, search_id, before, budget)
            front = client.get(f"/searches/{search_id}/pareto").json()["data"]
    confirmed = sum(p["confirmed"] for p in front)
    observed = (
        f"{done['status']} after {kills} kills ({done['attempts']} attempts), {detail}, "
        f"{confirmed} of {len(front)} front trials confirmed"
    )
    passed = done["status"] == "completed" and kills == 2 and lost == duplicated == 0
    return Row(name, expected, observed, lost, duplicated, passed and confirmed > 0)


def missing_resources(home: Path) -> Row:
    """``gpus_per_trial: 2`` on a machine without a GPU, through the API and the CLI."""
    name = "gpus_per_trial 2 on a machine without a GPU (API and CLI)"
    expected = "API: search failed with one line naming GPUs; CLI: exit 2, one line"
    started = time.monotonic()
    with ray_tmpdir() as ray_tmp:
        env = service_env(home, RAY_TMPDIR=ray_tmp)
        with (
            Server(env, workers=1) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            body = {**SEARCH, "budget": 2, "gpus_per_trial": 2}
            search_id = client.post("/searches", json=body).json()["id"]
            done = wait_for(client, search_id, is_finished, 300)
        api_s = time.monotonic() - started
        cli = subprocess.run(
            [
                *(sys.executable, "-m", "nas", "search", "--space", "tiny"),
                *("--dataset", "synthetic", "--budget", "2", "--epochs", "1"),
                *("--gpus-per-trial", "2"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    error = (done or {}).get("error") or ""
    err = cli.stderr.strip()
    observed = (
        f"API: {(done or {}).get('status', 'still running')} in {api_s:.0f} s: {error!r}; "
        f"CLI: exit {cli.returncode}: {err[-200:]!r}"
    )
    passed = (
        done is not None
        and done["status"] == "failed"
        and "gpus_per_trial" in error
        and "0 GPUs" in error
        and cli.returncode == 2
        and "\n" not in err
        and "gpus_per_trial" in err
    )
    return Row(name, expected, observed, 0, 0, passed)
