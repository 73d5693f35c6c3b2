"""A small thread-safe TTL cache of rendered responses (the Pareto front is read far more
often than it changes: a finished search's front never changes again)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["ResponseCache"]


class ResponseCache:
    """``key -> bytes`` with a per-entry lifetime (None: until evicted), LRU-bounded."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """The cached bytes, or None when absent or expired."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            expires, body = entry
            if expires < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return body

    def put(self, key: str, body: bytes, ttl: float | None) -> None:
        """Keep ``body`` for ``ttl`` seconds (forever when None; not at all when <= 0)."""
        if ttl is not None and ttl <= 0:
            return
        expires = float("inf") if ttl is None else time.monotonic() + ttl
        with self._lock:
            self._data[key] = (expires, body)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
