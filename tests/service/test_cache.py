"""The response cache of the Pareto route: lifetimes and LRU bound."""

from __future__ import annotations

import time

from service.cache import ResponseCache


def test_entries_expire_and_the_oldest_is_evicted() -> None:
    cache = ResponseCache(max_entries=2)
    cache.put("running", b"1", ttl=0.05)
    cache.put("finished", b"2", ttl=None)
    cache.put("off", b"3", ttl=0)
    assert cache.get("running") == b"1" and cache.get("finished") == b"2"
    assert cache.get("off") is None
    time.sleep(0.08)
    assert cache.get("running") is None and cache.get("finished") == b"2"
    cache.put("a", b"a", ttl=None)
    cache.put("b", b"b", ttl=None)
    assert cache.get("finished") is None  # least recently used, beyond two entries
    assert cache.get("a") == b"a" and cache.get("b") == b"b"


def test_a_running_search_front_is_refreshed(client, app) -> None:  # type: ignore[no-untyped-def]
    from service import crud

    app.state.settings.cache_seconds = 0
    search_id = client.post("/searches", json={"space": "tiny", "budget": 3}).json()["id"]
    assert client.get(f"/searches/{search_id}/pareto").json()["count"] == 0
    with app.state.sessionmaker() as session:
        record = {"number": 0, "state": "COMPLETE", "values": {"accuracy": 1, "latency_ms": 1}}
        crud.upsert_trial(session, search_id=search_id, record=record)
    assert client.get(f"/searches/{search_id}/pareto").json()["count"] == 1
