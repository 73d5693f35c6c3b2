"""The measurement lock: shared for training steps, exclusive and fair for measurements."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nas.evaluation import MeasurementLock, measurement_lock

_HOLDER = """
import sys
from nas.evaluation.isolation import MeasurementLock
lock = MeasurementLock(sys.argv[1])
getattr(lock, "acquire_" + sys.argv[2])()
print("held", flush=True)
sys.stdin.readline()
"""


def _hold_in_process(folder: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_shared_holds_coexist_and_exclude_a_measurement(tmp_path: Path) -> None:
    a, b, w = (MeasurementLock(tmp_path) for _ in range(3))
    assert a.acquire_shared(timeout=0) and b.acquire_shared(timeout=0)
    assert not w.acquire_exclusive(timeout=0.01)
    a.release_shared()
    assert not w.acquire_exclusive(timeout=0.01)
    b.release_shared()
    assert w.acquire_exclusive(timeout=0)
    assert not a.acquire_shared(timeout=0.01)
    w.release_exclusive()
    assert a.acquire_shared(timeout=0)
    a.release_shared()


def test_waiting_measurement_stops_new_training_steps(tmp_path: Path) -> None:
    """The intent turnstile: a pending measurement is not starved by new shared holds."""
    trainer_a, trainer_b, writer = (MeasurementLock(tmp_path) for _ in range(3))
    assert trainer_a.acquire_shared()
    acquired = threading.Event()

    def measure() -> None:
        writer.acquire_exclusive()
        acquired.set()

    thread = threading.Thread(target=measure, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while trainer_b.acquire_shared(timeout=0):  # until the writer has announced itself
        trainer_b.release_shared()
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert not acquired.is_set()  # trainer_a still holds its step
    trainer_a.release_shared()
    assert acquired.wait(10)
    assert not trainer_b.acquire_shared(timeout=0)
    writer.release_exclusive()
    assert trainer_b.acquire_shared(timeout=5)
    trainer_b.release_shared()
    thread.join()


def test_holds_work_across_processes_and_die_with_them(tmp_path: Path) -> None:
    here = MeasurementLock(tmp_path)
    proc = _hold_in_process(tmp_path, "exclusive")
    try:
        assert not here.acquire_shared(timeout=0.01)
    finally:
        proc.kill()
        proc.wait()
    assert here.acquire_shared(timeout=5)  # the kernel released the dead process's lock
    here.release_shared()
    proc = _hold_in_process(tmp_path, "shared")
    try:
        assert not here.acquire_exclusive(timeout=0.01)
        assert here.acquire_shared(timeout=0)
        here.release_shared()
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait()
    assert here.acquire_exclusive(timeout=5)
    here.release_exclusive()


def test_nesting_rules(tmp_path: Path) -> None:
    lock, other = MeasurementLock(tmp_path), MeasurementLock(tmp_path)
    with lock.exclusive():
        with lock.shared():  # a step inside a measurement of the same process: no-op
            pass
        assert not other.acquire_shared(timeout=0)  # still exclusive
    with lock.shared():
        with lock.shared():
            pass
        assert not other.acquire_exclusive(timeout=0)  # still shared after the inner release
        with pytest.raises(RuntimeError, match="cannot measure"):
            lock.acquire_exclusive()
    with pytest.raises(RuntimeError):
        lock.release_shared()
    with pytest.raises(TimeoutError, match="still busy"), other.shared(), lock.exclusive(0.01):
        pass


def test_process_wide_lock_lives_in_the_workspace(nas_home: Path) -> None:
    lock = measurement_lock()
    assert lock is measurement_lock()
    assert lock.folder == (nas_home / "locks").resolve()
    with lock.exclusive():
        assert (nas_home / "locks" / "measure.lock").exists()
