"""The MLflow fault scenario of bench/faults.py: the tracking server a search logs to is
killed mid-search and started again a minute later. Trials must all finish; a trial logged
while the server was down is either written after it returns or has no MLflow run id (an
untracked trial, listed by the API with ``mlflow_run_id: null``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fault_common import SEARCH, Row, Server, free_port, service_env
from fault_processes import finished_trials, is_finished, outcome, ray_tmpdir, wait_for

DOWN_S = 60.0


class TrackingServer:
    """``mlflow server`` on a free loopback port, its store in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"),
            *("--port", str(self.port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"),
            *("--artifacts-destination", str(self.root / "artifacts")),
        ]
        with open(self.root / "mlflow.log", "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


def _logged_runs(url: str, parent: str | None) -> int:
    """Child runs of the search's parent run on the tracking server."""
    if not parent:
        return 0
    body = {"experiment_ids": [], "filter": f"tags.mlflow.parentRunId = '{parent}'"}
    experiments = httpx.post(
        f"{url}/api/2.0/mlflow/experiments/search", json={"max_results": 100}, timeout=10
    ).json()
    body["experiment_ids"] = [e["experiment_id"] for e in experiments.get("experiments", [])]
    runs = httpx.post(
        f"{url}/api/2.0/mlflow/runs/search", json={**body, "max_results": 1000}, timeout=10
    ).json()
    return len(runs.get("runs", []))


def mlflow_outage(home: Path) -> Row:
    """MLflow killed after two trials, started again after 60 s."""
    name = f"MLflow server killed mid-search, restarted {DOWN_S:g} s later"
    expected = "every trial finishes; each trial logged or listed untracked; 0 lost, 0 dup"
    budget = 8
    tracking = TrackingServer(home)
    tracking.start()
    try:
        with ray_tmpdir() as ray_tmp:
            env = service_env(
                home,
                RAY_TMPDIR=ray_tmp,
                MLFLOW_TRACKING_URI=tracking.url,
                NAS_LEASE_SECONDS="60",
            )
            with (
                Server(env, workers=1) as server,
                httpx.Client(base_url=server.url, timeout=10) as client,
            ):
                body = {**SEARCH, "budget": budget, "confirm_seeds": 0}
                search_id = client.post("/searches", json=body).json()["id"]
                deadline = time.monotonic() + 300
                while len(before := finished_trials(client, search_id)) < 2:
                    if time.monotonic() > deadline:
                        return Row(name, expected, "no 2 trials in 300 s: " + server.tail(300))
                    time.sleep(0.5)
                tracking.kill()
                killed = time.monotonic()
                during = wait_for(client, search_id, lambda b: b["progress"]["done"] > 2, DOWN_S)
                time.sleep(max(DOWN_S - (time.monotonic() - killed), 0))
                tracking.start()
                done = wait_for(client, search_id, is_finished, 600)
                if done is None:
                    return Row(name, expected, "not finished in 600 s: " + server.tail(300))
                lost, duplicated, detail = outcome(client, search_id, before, budget)
                trials = finished_trials(client, search_id)
                untracked = sorted(n for n, t in trials.items() if not t["mlflow_run_id"])
                logged = _logged_runs(tracking.url, done.get("mlflow_run_id"))
    finally:
        tracking.kill()
    progressed = "trials went on while it was down" if during else "no trial finished while down"
    observed = (
        f"{done['status']}, {detail}, {progressed}; {logged} child runs on the server, "
        f"untracked trials {untracked or 'none'}"
    )
    accounted = logged + len(untracked) >= len(trials)
    passed = done["status"] == "completed" and lost == duplicated == 0 and accounted
    return Row(name, expected, observed, lost, duplicated, passed and during is not None)
