"""Damaged store scenarios of bench/faults.py: a corrupt latency-cache entry and a truncated
SQLite Optuna study. Expected: detected and reported in one line; the cache entry measured
again; the study never silently replaced by a new one."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

from fault_common import Row, service_env


def corrupt_cache_entry(home: Path) -> Row:
    """A latency-cache row whose stats are cut mid-JSON, read back by the cache."""
    from nas.evaluation.cache import LatencyCache
    from nas.evaluation.stats import LatencyStats

    name = "corrupt latency-cache entry"
    expected = "read as a miss (measured again), one warning line; other entries kept"
    path = home / "latency_cache.sqlite"
    cache = LatencyCache(path)
    fields = {"device": "cpu", "device_name": "cpu", "threads": 1, "batch_size": 1}
    stats = LatencyStats(
        median_ms=1.0, p90_ms=1.2, p10_ms=0.9, min_ms=0.8, mean_ms=1.0, cv=0.1, repeats=10,
        warmup=2, input_shape=(1, 3, 32, 32), torch_version="2", **fields,
    )  # fmt: skip
    cache.put("good", stats)
    cache.put("bad", stats)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE latency SET stats = substr(stats, 1, 20) WHERE model_key = 'bad'")
    conditions = {
        **fields, "input_shape": stats.input_shape, "torch_version": "2", "clock": "wall",
    }  # fmt: skip
    try:
        bad: object = cache.get("bad", **conditions)
    except Exception as exc:
        bad = f"raised {type(exc).__name__}: {str(exc)[:80]}"
    good = cache.get("good", **conditions)
    observed = f"corrupt entry: {bad!r}; intact entry read back: {good == stats}"
    return Row(name, expected, observed, 0, 0, bad is None and good == stats)


def truncated_study(home: Path) -> Row:
    """A finished search's SQLite study cut to half its size, then ``nas search --resume``."""
    name = "truncated SQLite study, then nas search --resume"
    expected = "exit non-zero, one line naming the storage; the file not replaced"
    study = home / "study.db"
    env = service_env(home)
    argv = [sys.executable, "-m", "nas", "search", "--storage", f"sqlite:///{study}"]
    first = subprocess.run(
        [*argv, "--space", "tiny", "--dataset", "synthetic", "--budget", "2", "--epochs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if first.returncode != 0:
        return Row(name, expected, f"the first search failed: {first.stderr[-300:]}")
    with sqlite3.connect(study) as conn:
        search_id = (
            conn.execute(
                "SELECT value_json FROM study_user_attributes WHERE key = 'nas.search_id'"
            )
            .fetchone()[0]
            .strip('"')
        )
    with sqlite3.connect(study) as conn:  # every page in the main file, none in a WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = study.stat().st_size
    with open(study, "r+b") as handle:
        handle.truncate(size // 2)
    digest = hashlib.sha256(study.read_bytes()).hexdigest()
    resumed = subprocess.run(
        [*argv, "--resume", search_id], env=env, capture_output=True, text=True, timeout=600
    )
    err = resumed.stderr.strip()
    unchanged = hashlib.sha256(study.read_bytes()).hexdigest() == digest
    observed = f"exit {resumed.returncode}: {err[-240:]!r}; file unchanged: {unchanged}"
    passed = resumed.returncode != 0 and err.count("\n") == 0 and err != "" and unchanged
    return Row(name, expected, observed, 0 if unchanged else "study", 0, passed)
