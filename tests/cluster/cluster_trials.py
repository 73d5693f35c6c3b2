"""The trial function of the integration test (the service's ``NAS_TRIAL_FUNCTION``).

It runs the real :func:`nas.evaluation.evaluate` inside the Ray worker and adds the id of the
Ray node that ran it (``ray_node_id``), so the test can tell where each trial ran. For the
node-loss test it leaves a marker per started trial in ``$NAS_IT_MARKS`` and, on a node whose
environment sets ``NAS_IT_HOLD_AFTER=N``, holds every trial past the N-th there, so the test
kills that node while one of its trials certainly runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["evaluate_on_node"]

#: How long a held trial waits to be killed before it goes on (the test never needs this).
HOLD_SECONDS = 120.0


def evaluate_on_node(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
    """``evaluate(space, arch, settings)`` plus ``ray_node_id``."""
    import ray

    from nas.evaluation import evaluate

    node_id = ray.get_runtime_context().get_node_id()
    marks = os.environ.get("NAS_IT_MARKS")
    if marks:
        folder = Path(marks)
        folder.mkdir(parents=True, exist_ok=True)
        started = len(list(folder.glob(f"{node_id}-*.started")))
        (folder / f"{node_id}-{started}-{os.getpid()}.started").touch()
        hold_after = os.environ.get("NAS_IT_HOLD_AFTER")
        if hold_after is not None and started >= int(hold_after):
            (folder / f"{node_id}-{started}.held").touch()
            time.sleep(HOLD_SECONDS)
    metrics = dict(evaluate(space, arch, settings))
    metrics["ray_node_id"] = node_id
    return metrics
