"""A latency cache in the workspace: an identical architecture is measured once per condition.

Entries live in a SQLite file (``$NAS_HOME/latency_cache.sqlite``); SQLite's own locking
makes concurrent trial processes safe. The key is the model key (space fingerprint + arch id)
plus the conditions: device, device name, batch size, input shape, threads, torch version,
the clock and the backend; for the ``onnxruntime`` backend also ONNX Runtime's version, the
exporter and the opset (the measured graph depends on them). A ``torch`` entry keeps the key it
had before backends existed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from nas import workspace
from nas.evaluation.stats import LatencyStats

__all__ = ["LatencyCache", "cache_key", "runtime_version"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latency (
    key TEXT PRIMARY KEY,
    model_key TEXT NOT NULL,
    conditions TEXT NOT NULL,
    stats TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(
    model_key: str,
    *,
    device: str,
    device_name: str,
    batch_size: int,
    input_shape: Sequence[int],
    threads: int,
    torch_version: str,
    clock: str = "wall",
    backend: str = "torch",
) -> tuple[str, str]:
    """(key, conditions JSON) of one measurement condition for one model."""
    fields: dict[str, object] = {
        "device": device,
        "device_name": device_name,
        "batch_size": int(batch_size),
        "input_shape": [int(v) for v in input_shape],
        "threads": int(threads),
        "torch_version": torch_version,
        "clock": clock,
    }
    if backend != "torch":
        fields["backend"] = backend
        fields["runtime"] = runtime_version(backend)
    conditions = json.dumps(fields, sort_keys=True)
    digest = hashlib.sha256(f"{model_key}\n{conditions}".encode()).hexdigest()
    return digest, conditions


@cache
def runtime_version(backend: str) -> str:
    """What a latency of `backend` depends on beyond torch: for ``onnxruntime`` the installed
    runtime's version, the exporter and the opset; ``""`` for ``torch``."""
    if backend != "onnxruntime":
        return ""
    from importlib.metadata import PackageNotFoundError, version

    from nas.onnx_export import EXPORTER, OPSET

    try:
        runtime = version("onnxruntime")
    except PackageNotFoundError:
        runtime = "not installed"
    return f"onnxruntime {runtime}, {EXPORTER} exporter, opset {OPSET}"


class LatencyCache:
    """Get and put :class:`LatencyStats` by (model key, conditions)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else workspace.home() / "latency_cache.sqlite"
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            self._ready = True
        return connection

    def get(self, model_key: str, **conditions: object) -> LatencyStats | None:
        """The cached stats, or None."""
        key, _ = cache_key(model_key, **conditions)  # type: ignore[arg-type]
        connection = self._connect()
        try:
            row = connection.execute("SELECT stats FROM latency WHERE key = ?", (key,)).fetchone()
        finally:
            connection.close()
        return LatencyStats.from_dict(json.loads(row[0])) if row else None

    def put(self, model_key: str, stats: LatencyStats, **conditions: object) -> None:
        """Store `stats` under `conditions`, those :meth:`get` is asked with (default: the
        stats' own). They differ when a measurement asked for one clock and fell back to
        another (a CUDA graph that could not be captured, timed eagerly), so that asking
        again finds it. The first measurement wins."""
        own = {
            "device": stats.device,
            "device_name": stats.device_name,
            "batch_size": stats.batch_size,
            "input_shape": stats.input_shape,
            "threads": stats.threads,
            "torch_version": stats.torch_version,
            "clock": stats.clock,
            "backend": stats.backend,
        }
        key, conditions_json = cache_key(model_key, **(conditions or own))  # type: ignore[arg-type]
        connection = self._connect()
        try:
            connection.execute(
                "INSERT OR IGNORE INTO latency (key, model_key, conditions, stats, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, model_key, conditions_json, json.dumps(stats.to_dict()), time.time()),
            )
        finally:
            connection.close()

    def __len__(self) -> int:
        connection = self._connect()
        try:
            return int(connection.execute("SELECT COUNT(*) FROM latency").fetchone()[0])
        finally:
            connection.close()
