"""``nas serve`` as a real process with the real ``nas.search.run_search``: submit a tiny
search over HTTP, SIGKILL the service (API, worker and Ray, the whole process group) while
the search runs, start it again, and check that the search finishes its budget with every
trial finished before the kill kept, none duplicated, and a readable Pareto front confirmed
with a second training seed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

BUDGET = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker`` (our Ray temp dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


class Service:
    """Starts and kills ``nas serve`` processes (each in its own process group)."""

    def __init__(self, home: Path, ray_tmp: str) -> None:
        self.home, self.ray_tmp = home, ray_tmp
        home.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.env = {
            **os.environ,
            "NAS_HOME": str(home),
            "RAY_TMPDIR": ray_tmp,
            "NAS_POLL_SECONDS": "0.2",
            "NAS_LEASE_SECONDS": "20",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.home / f"serve-{port}.log", "wb")  # noqa: SIM115 (kept by the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nas", "serve", "--port", str(port), "--log-level", "warning"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.logs()
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("nas serve did not answer /health:\n" + self.logs())

    def kill(self) -> None:
        """SIGKILL the whole process group: API, workers and the Ray they started."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.home.glob("*.log"))


@pytest.fixture
def service(nas_home: Path) -> Iterator[Service]:
    ray_tmp = tempfile.mkdtemp(prefix="nasray")  # short: Ray's socket paths must fit
    svc = Service(nas_home, ray_tmp)
    try:
        yield svc
    finally:
        svc.stop()
        deadline = time.monotonic() + 15
        while _processes_mentioning(ray_tmp) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in _processes_mentioning(ray_tmp):  # only processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _get(svc: Service, path: str) -> Any:
    response = httpx.get(svc.url + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _wait(svc: Service, search_id: str, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = _get(svc, f"/searches/{search_id}")
        if predicate(body):
            return body
        assert body["status"] not in ("failed", "cancelled"), body
        assert time.monotonic() < deadline, f"timed out: {body}\n{svc.logs()}"
        time.sleep(0.2)


def _finished(svc: Service, search_id: str) -> dict[int, dict[str, Any]]:
    trials = _get(svc, f"/searches/{search_id}/trials?limit=1000")["data"]
    return {t["number"]: t for t in trials if t["state"] == "COMPLETE"}


def test_serve_runs_a_search_that_survives_sigkill(service: Service) -> None:
    service.start()
    response = httpx.post(
        f"{service.url}/searches",
        json={
            "space": "tiny",
            "dataset": "synthetic",
            "budget": BUDGET,
            "epochs": 1,
            "concurrency": 1,
            "name": "e2e",
            "confirm_seeds": 1,
            "confirm_max": 2,
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text
    search_id = response.json()["id"]

    deadline = time.monotonic() + 120
    while len(before := _finished(service, search_id)) < 2:
        trials = _get(service, f"/searches/{search_id}/trials?limit=1000")["data"]
        errors = [(t["number"], t["state"], t["error"]) for t in trials if t["error"]]
        assert time.monotonic() < deadline, f"no 2 complete trials: {errors}\n{service.logs()}"
        time.sleep(0.2)
    running = _get(service, f"/searches/{search_id}")
    service.kill()  # mid-search: the budget is not reached yet
    assert len(before) < BUDGET
    assert running["status"] == "running" and running["mlflow_run_id"]

    service.start()
    body = _wait(service, search_id, lambda b: b["status"] == "completed", timeout=150)
    assert body["progress"]["done"] == BUDGET
    assert body["attempts"] == 2
    assert body["mlflow_run_id"] == running["mlflow_run_id"] and body["study_name"]

    trials = _get(service, f"/searches/{search_id}/trials?limit=1000")
    numbers = [t["number"] for t in trials["data"]]
    assert len(numbers) == len(set(numbers)) == trials["count"]
    after = _finished(service, search_id)
    finished_fails = [t for t in trials["data"] if t["state"] == "FAIL" and not t["interrupted"]]
    assert len(after) + len(finished_fails) == BUDGET
    for number, trial in before.items():  # nothing finished before the kill was lost
        assert after[number]["values"] == trial["values"]
        assert after[number]["arch_id"] == trial["arch_id"]

    pareto = _get(service, f"/searches/{search_id}/pareto")
    assert pareto["status"] == "completed" and pareto["count"] >= 1
    for point in pareto["data"]:
        assert point["arch_id"] and point["arch"] and point["feasible"]
        assert set(point["values"]) == {"accuracy", "latency_ms"}
        assert point["num_params"] > 0 and point["flops"] > 0
        assert point["number"] in after
        assert point["confirm_candidate"] and 0 <= point["test_accuracy"] <= 1
        if point["confirmed"]:  # trained again with seed 1: the mean of two seeds
            assert point["n_seeds"] == 2 and point["accuracy_sd"] is not None
    assert any(point["confirmed"] for point in pareto["data"]), pareto
    assert body["progress"]["phase"] == "confirming"
    assert body["progress"]["confirm_done"] == body["progress"]["confirm_total"] > 0
    png = httpx.get(f"{service.url}/searches/{search_id}/pareto.png", timeout=30)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
