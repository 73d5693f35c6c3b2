"""A worker that started Ray stops on SIGTERM through its own handler, without the crash
report (``*** SIGTERM received ... PC: @``) of Ray's native failure-signal handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

# What `nas worker` does: its own SIGTERM handler, then Ray starts inside a search.
_WORKER = """
import signal, sys, threading
from nas.search.resources import ensure_ray

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
ensure_ray()
print("ready", flush=True)
if not stop.wait(60):
    sys.exit("no SIGTERM seen")
print("stopped cleanly", flush=True)
"""


def test_sigterm_reaches_the_workers_handler_without_a_crash_report(tmp_path: Path) -> None:
    env = {**os.environ, "NAS_HOME": str(tmp_path), "RAY_ADDRESS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # Ray's start-up lines may come first
            lines.append(line)
            if line.strip() == "ready":
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "stopped cleanly" in output
    assert "SIGTERM received" not in output and "PC: @" not in output
