"""The trial function of the integration test (the service's ``NAS_TRIAL_FUNCTION``).

It runs the real :func:`nas.evaluation.evaluate` inside the Ray worker and adds the id of the
Ray node that ran it (``ray_node_id``), so the test can tell where each trial ran. For the
node-loss test it orders the trials with marker files in ``$NAS_IT_MARKS``, so the test does
not depend on which node happens to be faster:

- on a node whose environment sets ``NAS_IT_HOLD_AFTER=N``, every trial past the N-th there
  is held (it waits to be killed with its node);
- on a node that sets ``NAS_IT_WAIT_FOR_PEER=1``, a trial starts only once a trial on another
  node has finished, so the held node gets its next trial before the budget runs out.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["evaluate_on_node"]

#: How long a held or waiting trial waits before it goes on (the test never needs this).
WAIT_SECONDS = 120.0


def _wait_for(found: Any) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not found() and time.monotonic() < deadline:
        time.sleep(0.2)


def evaluate_on_node(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
    """``evaluate(space, arch, settings)`` plus ``ray_node_id``."""
    import ray

    from nas.evaluation import evaluate

    node_id = ray.get_runtime_context().get_node_id()
    marks = os.environ.get("NAS_IT_MARKS")
    folder = Path(marks) if marks else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        started = len(list(folder.glob(f"{node_id}-*.started")))
        (folder / f"{node_id}-{started}-{os.getpid()}.started").touch()
        hold_after = os.environ.get("NAS_IT_HOLD_AFTER")
        if hold_after is not None and started >= int(hold_after):
            (folder / f"{node_id}-{started}.held").touch()
            _wait_for(lambda: False)
        if os.environ.get("NAS_IT_WAIT_FOR_PEER"):
            _wait_for(lambda: any(not p.name.startswith(node_id) for p in folder.glob("*.done")))
    metrics = dict(evaluate(space, arch, settings))
    metrics["ray_node_id"] = node_id
    if folder is not None:
        (folder / f"{node_id}-{os.getpid()}-{time.monotonic_ns()}.done").touch()
    return metrics
