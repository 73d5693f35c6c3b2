"""A per-node readers-writer lock that keeps latency measurements off a busy CPU.

Training steps hold the lock *shared*; a latency measurement holds it *exclusive*, so it
runs while every cooperating trial on the node is paused between two steps. Plain
``flock`` readers-writer locks starve the writer when several trainers overlap their shared
holds, so a second *intent* lock acts as a turnstile: the measurement takes ``intent``
exclusive first, and each training step passes through ``intent`` (shared, released at once)
before taking the main lock shared. Once a measurement has announced itself, new steps wait at
the turnstile and the running ones drain within one step.

The lock files live in ``$NAS_HOME/locks`` (one node: ``flock`` is not reliable on network
file systems). The kernel drops the locks of a process that dies, so a crashed trial never
blocks the node.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from nas import workspace

__all__ = ["MeasurementLock", "measurement_lock"]


class MeasurementLock:
    """Readers-writer lock over two files in `folder` (default ``$NAS_HOME/locks``).

    Not re-entrant across instances: one process should use one instance per folder
    (see :func:`measurement_lock`). A shared hold inside an exclusive hold of the same
    instance is a no-op, and nested shared holds are counted.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else workspace.home() / "locks"
        self._pid = -1
        self._rw = -1
        self._intent = -1
        self._shared = 0
        self._exclusive = 0
        self._mutex = threading.RLock()

    def _fds(self) -> tuple[int, int]:
        """Open the lock files once per process (a forked child must not share them)."""
        if self._pid != os.getpid():
            self.folder.mkdir(parents=True, exist_ok=True)
            self._rw = os.open(self.folder / "measure.lock", os.O_RDWR | os.O_CREAT, 0o666)
            self._intent = os.open(self.folder / "measure.intent", os.O_RDWR | os.O_CREAT, 0o666)
            self._pid, self._shared, self._exclusive = os.getpid(), 0, 0
        return self._rw, self._intent

    @staticmethod
    def _flock(fd: int, op: int, deadline: float | None) -> bool:
        """`flock` blocking, or polling until `deadline` (monotonic seconds)."""
        if deadline is None:
            fcntl.flock(fd, op)
            return True
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.02)

    def acquire_shared(self, timeout: float | None = None) -> bool:
        """Take the lock for one training step; False if `timeout` seconds passed first."""
        with self._mutex:
            rw, intent = self._fds()
            if self._exclusive or self._shared:
                self._shared += 1
                return True
            deadline = None if timeout is None else time.monotonic() + timeout
            if not self._flock(intent, fcntl.LOCK_SH, deadline):
                return False
            fcntl.flock(intent, fcntl.LOCK_UN)
            if not self._flock(rw, fcntl.LOCK_SH, deadline):
                return False
            self._shared = 1
            return True

    def release_shared(self) -> None:
        """Release one shared hold."""
        with self._mutex:
            if self._shared <= 0:
                raise RuntimeError("release_shared without acquire_shared")
            self._shared -= 1
            if self._shared == 0 and not self._exclusive:
                fcntl.flock(self._rw, fcntl.LOCK_UN)

    def acquire_exclusive(self, timeout: float | None = None) -> bool:
        """Take the lock for a measurement; False if `timeout` seconds passed first."""
        with self._mutex:
            rw, intent = self._fds()
            if self._exclusive:
                self._exclusive += 1
                return True
            if self._shared:
                raise RuntimeError("cannot measure while this process holds a training step")
            deadline = None if timeout is None else time.monotonic() + timeout
            if not self._flock(intent, fcntl.LOCK_EX, deadline):
                return False
            if not self._flock(rw, fcntl.LOCK_EX, deadline):
                fcntl.flock(intent, fcntl.LOCK_UN)
                return False
            self._exclusive = 1
            return True

    def release_exclusive(self) -> None:
        """Release the measurement hold; paused training steps resume."""
        with self._mutex:
            if self._exclusive <= 0:
                raise RuntimeError("release_exclusive without acquire_exclusive")
            self._exclusive -= 1
            if self._exclusive == 0:
                fcntl.flock(self._rw, fcntl.LOCK_UN)
                fcntl.flock(self._intent, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock shared for one training step."""
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextlib.contextmanager
    def exclusive(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock exclusive for a measurement; TimeoutError after `timeout` s."""
        if not self.acquire_exclusive(timeout):
            raise TimeoutError(f"latency lock in {self.folder} still busy after {timeout} s")
        try:
            yield
        finally:
            self.release_exclusive()


_LOCKS: dict[Path, MeasurementLock] = {}
_LOCKS_MUTEX = threading.Lock()


def measurement_lock(folder: str | Path | None = None) -> MeasurementLock:
    """The process-wide lock for `folder` (default ``$NAS_HOME/locks``)."""
    path = Path(folder) if folder is not None else workspace.home() / "locks"
    path = path.resolve()
    with _LOCKS_MUTEX:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = MeasurementLock(path)
        return lock
