"""``nas serve`` (the REST API and its workers) and ``nas worker`` (one more worker).

Searches run in worker processes, never in the API process. Workers share the service
database (``DATABASE_URL``): start more with ``nas worker`` on this or other machines.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["register"]

log = logging.getLogger("nas.serve")


def register(subparsers: Any) -> None:
    """Add the ``serve`` and ``worker`` sub-commands."""
    serve = subparsers.add_parser(
        "serve",
        help="run the REST API and search workers",
        description="Run the REST API (uvicorn) and N worker processes that run the queued "
        "searches. Configuration comes from the environment: DATABASE_URL, NAS_API_KEY, "
        "NAS_MAX_BUDGET, NAS_MAX_RUNNING, NAS_MAX_QUEUED, NAS_LEASE_SECONDS, ...",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes to start (default 1; 0 = API only, run `nas worker` elsewhere)",
    )
    serve.add_argument("--log-level", default="info", help="uvicorn log level (info)")
    serve.set_defaults(handler=_serve)

    worker = subparsers.add_parser(
        "worker",
        help="run one search worker for the service",
        description="Take queued searches from the service database (DATABASE_URL) and run "
        "them; several workers may share one database. SIGTERM/Ctrl-C stops the running "
        "search cleanly and puts it back in the queue.",
    )
    worker.add_argument(
        "--exit-when-idle", action="store_true", help="exit when the queue is empty"
    )
    worker.add_argument("--log-level", default="info", help="log level (info)")
    worker.set_defaults(handler=_worker)


def _parent_death_hook() -> Any:
    """A pre-exec hook making a child get SIGTERM when this process dies, even by SIGKILL.

    libc is loaded here, in the parent, so the hook does no import between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return hook


def _spawn_worker(log_level: str, hook: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nas", "worker", "--log-level", log_level], preexec_fn=hook
    )


class _Supervisor:
    """Keeps N worker processes alive while the API runs; stops them afterwards."""

    def __init__(self, count: int, log_level: str) -> None:
        self.count, self.log_level = count, log_level
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.hook = _parent_death_hook()

    def start(self) -> None:
        self.procs = [_spawn_worker(self.log_level, self.hook) for _ in range(self.count)]
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(2.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stopping.is_set():
                    log.warning(
                        "worker %s exited with %s; starting another", proc.pid, proc.returncode
                    )
                    self.procs[i] = _spawn_worker(self.log_level, self.hook)

    def stop(self, timeout: float = 60.0) -> None:
        self.stopping.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _check_home_writable() -> None:
    """NAS_HOME (the workers' Optuna, MLflow and weight stores) takes a file, or NasError."""
    import tempfile

    from nas.errors import NasError
    from nas.workspace import home

    folder = os.environ.get("NAS_HOME", "$NAS_HOME")
    try:
        folder = str(home())  # creates it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise NasError(
            f"NAS_HOME {folder} is not writable ({exc.strerror}): the service stores its "
            "searches there; point NAS_HOME at a writable folder"
        ) from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy.exc import OperationalError

    from nas.errors import NasError
    from service.core.config import get_settings
    from service.db import check_writable, create_db_engine
    from service.migrations import upgrade

    if args.workers < 0:
        raise NasError(f"--workers {args.workers}: give 0 or more worker processes")
    settings = get_settings()
    # Migrate before the workers poll; a database newer than this code stops here (one line).
    _check_home_writable()
    engine = create_db_engine(settings.database_url)
    try:
        before, after = upgrade(engine)
        check_writable(engine)
    except OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise NasError(f"cannot open the service database {url}: {reason}") from None
    finally:
        engine.dispose()
    if before != after:
        print(f"nas serve: service database migrated from {before or 'no revision'} to {after}")
    supervisor = _Supervisor(args.workers, args.log_level)
    supervisor.start()
    try:
        uvicorn.run(
            "service.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
    finally:
        supervisor.stop()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from service.worker import Worker

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    worker = Worker()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("worker %s: signal %s, stopping after the running trials", os.getpid(), signum)
        worker.shutdown.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run_forever(exit_when_idle=args.exit_when_idle)
    return 0
