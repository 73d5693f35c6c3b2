"""What the fault scenarios of bench/faults.py share: a row of the table, ``nas serve`` as a
context manager, the environment of a service whose stores live in one folder."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SEARCH = {"space": "tiny", "dataset": "synthetic", "epochs": 1, "concurrency": 1}
"""The request of a real, small search (synthetic data, one epoch)."""


@dataclass
class Row:
    """One scenario's outcome."""

    scenario: str
    expected: str
    observed: str
    lost: int | str = 0
    duplicated: int | str = 0
    passed: bool | None = False  # None: skipped

    @property
    def verdict(self) -> str:
        return "skipped" if self.passed is None else ("pass" if self.passed else "FAIL")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``nas serve`` whose stores live in ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RAY_ADDRESS")}
    env |= {
        "NAS_HOME": str(home),
        "NAS_POLL_SECONDS": "0.2",
        "NAS_LEASE_SECONDS": "20",
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


class Server:
    """``nas serve`` in its own process group, started and stopped as a context manager."""

    def __init__(self, env: dict[str, str], *, workers: int = 0, log: Path | None = None) -> None:
        self.env, self.workers = env, workers
        self.log = log or Path(env["NAS_HOME"]) / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Server:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "nas", "serve", "--port", str(port)),
                    *("--workers", str(self.workers), "--log-level", "warning"),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nas serve exited: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"nas serve did not answer /health: {self.tail()}")

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def peak_rss_mb(self) -> float:
        """The API process's peak resident memory (VmHWM), MB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")
