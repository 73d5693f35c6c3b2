"""Workers against SQLite and PostgreSQL, with a stand-in search function: claim, lease,
takeover of a dead worker's search, cancel, graceful stop, limits."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from fake_search import FakeSearch, failing

from nas.errors import NasError
from service.models import Search, Trial, utcnow
from service.queue import claim_next
from service.worker import Worker


def make_worker(settings: Any, search: FakeSearch, **kwargs: Any) -> Worker:
    return Worker(settings, search_fn=search, config_factory=lambda c, _s: c, **kwargs)


def queue(client: Any, budget: int = 5) -> str:
    response = client.post("/searches", json={"space": "tiny", "budget": budget})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def row(app: Any, search_id: str) -> Search:
    with app.state.sessionmaker() as session:
        return session.get(Search, search_id)


def trial_numbers(app: Any, search_id: str) -> list[int]:
    with app.state.sessionmaker() as session:
        trials = session.query(Trial).filter(Trial.search_id == search_id).all()
        return sorted(t.number for t in trials)


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_worker_runs_a_search_to_its_budget(settings: Any, app: Any, client: Any) -> None:
    search_id = queue(client, budget=6)
    fake = FakeSearch()
    worker = make_worker(settings, fake)
    assert worker.run_once() == search_id
    assert worker.run_once() is None
    body = client.get(f"/searches/{search_id}").json()
    assert body["status"] == "completed", body
    assert body["progress"]["done"] == 6 and body["progress"]["fraction"] == 1.0
    assert body["mlflow_run_id"] == f"parent-{search_id}"
    assert body["study_name"] == f"study-{search_id}"
    assert body["timings"]["started_at"] and body["timings"]["finished_at"]
    assert body["timings"]["elapsed_s"] >= 0 and body["timings"]["run_seconds"] > 0
    assert body["worker_id"] is None and body["attempts"] == 1
    assert trial_numbers(app, search_id) == list(range(6))
    pareto = client.get(f"/searches/{search_id}/pareto").json()
    assert pareto["count"] == body["progress"]["front_size"] > 0
    assert fake.calls == [search_id]


def test_confirmed_front_and_progress_reach_the_api(settings: Any, app: Any, client: Any) -> None:
    from fake_search import confirmed_accuracy, trial_values

    from nas.pareto import pareto_front

    search_id = queue(client, budget=8)
    make_worker(settings, FakeSearch(confirm=5)).run_once()
    body = client.get(f"/searches/{search_id}").json()
    assert body["status"] == "completed"
    assert body["progress"]["phase"] == "confirming"
    assert body["progress"]["confirm_done"] == body["progress"]["confirm_total"] == 10
    # The front among the 5 candidates, on their seed means (trial 1 kept its own value).
    means = [confirmed_accuracy(n) if n != 1 else trial_values(n)["accuracy"] for n in range(5)]
    rows = [[means[n], trial_values(n)["latency_ms"]] for n in range(5)]
    expected = pareto_front(rows, ["maximize", "minimize"])
    pareto = client.get(f"/searches/{search_id}/pareto").json()
    assert [p["number"] for p in pareto["data"]] == expected
    assert body["progress"]["front_size"] == len(expected)
    for point in pareto["data"]:
        n = point["number"]
        assert point["accuracy_mean"] == pytest.approx(means[n])
        assert point["confirmed"] == (n != 1) and point["n_seeds"] == (1 if n == 1 else 3)
        assert point["test_accuracy"] == 0.5
        assert point["confirm_error"] == ("RuntimeError: boom" if n == 1 else None)
    trials = client.get(f"/searches/{search_id}/trials").json()["data"]
    assert [t["confirm_candidate"] for t in trials] == [True] * 5 + [False] * 3
    assert all(t["n_seeds"] == 1 for t in trials[5:])
    assert trials[6]["accuracy_mean"] == trial_values(6)["accuracy"]


def test_failures_mark_the_search_failed_with_the_message(
    settings: Any, app: Any, client: Any
) -> None:
    first, second = queue(client), queue(client)
    make_worker(settings, failing("space 'x': stage 0 has no attention")).run_once()
    assert row(app, first).status == "failed"
    assert row(app, first).error == "space 'x': stage 0 has no attention"
    make_worker(settings, FakeSearch(error=RuntimeError("boom"), fail_after=2)).run_once()
    assert row(app, second).status == "failed"
    assert row(app, second).error == "RuntimeError: boom"
    assert trial_numbers(app, second) == [0, 1]


def test_cancel_stops_a_running_search(settings: Any, app: Any, client: Any) -> None:
    settings.lease_seconds = 0.3
    search_id = queue(client, budget=400)
    fake = FakeSearch(delay=0.01)
    worker = make_worker(settings, fake)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    wait_for(lambda: len(trial_numbers(app, search_id)) >= 3)
    assert client.post(f"/searches/{search_id}/cancel").status_code == 202
    thread.join(timeout=20)
    assert not thread.is_alive()
    body = client.get(f"/searches/{search_id}").json()
    assert body["status"] == "cancelled" and 3 <= body["progress"]["done"] < 400
    assert client.post(f"/searches/{search_id}/cancel").status_code == 409


def test_shutdown_puts_the_search_back_and_another_worker_finishes_it(
    settings: Any, app: Any, client: Any
) -> None:
    search_id = queue(client, budget=60)
    first = make_worker(settings, FakeSearch(delay=0.01))
    thread = threading.Thread(target=first.run_forever)
    thread.start()
    wait_for(lambda: len(trial_numbers(app, search_id)) >= 3)
    first.shutdown.set()
    thread.join(timeout=20)
    stopped = row(app, search_id)
    assert stopped.status == "queued" and stopped.worker_id is None
    assert 3 <= stopped.done < 60 and stopped.attempts == 0
    second = FakeSearch()
    make_worker(settings, second).run_once()
    assert row(app, search_id).status == "completed"
    assert trial_numbers(app, search_id) == list(range(60))
    assert second.calls == [search_id]


def _claim_as_dead_worker(app: Any, search_id: str, worker_id: str, *, expired: bool) -> None:
    """Make the search look claimed by ``worker_id`` that ran 3 trials, then died."""
    fake = FakeSearch()
    stop_after = iter(range(100))
    fake({"budget": 10}, search_id=search_id, should_stop=lambda: next(stop_after) >= 3)
    with app.state.sessionmaker() as session:
        search = session.get(Search, search_id)
        search.status, search.worker_id, search.attempts = "running", worker_id, 1
        search.started_at = utcnow()
        lease = timedelta(seconds=-1 if expired else 3600)
        search.lease_expires_at = utcnow() + lease
        session.commit()


def test_a_dead_workers_search_is_taken_over_after_its_lease(
    settings: Any, app: Any, client: Any
) -> None:
    search_id = queue(client, budget=10)
    _claim_as_dead_worker(app, search_id, "elsewhere:123:abc", expired=False)
    fake = FakeSearch()
    worker = make_worker(settings, fake)
    assert worker.run_once() is None  # the lease is still live
    with app.state.sessionmaker() as session:
        session.get(Search, search_id).lease_expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert worker.run_once() == search_id
    search = row(app, search_id)
    assert search.status == "completed" and search.attempts == 2 and search.done == 10
    assert trial_numbers(app, search_id) == list(range(10))


def test_a_dead_local_worker_is_seen_at_once(settings: Any, app: Any, client: Any) -> None:
    import socket

    search_id = queue(client, budget=10)
    gone = subprocess.Popen(["true"])
    gone.wait()
    _claim_as_dead_worker(app, search_id, f"{socket.gethostname()}:{gone.pid}:x", expired=False)
    assert make_worker(settings, FakeSearch()).run_once() == search_id
    assert row(app, search_id).status == "completed"
    assert trial_numbers(app, search_id) == list(range(10))


def test_a_search_whose_workers_keep_dying_fails(settings: Any, app: Any, client: Any) -> None:
    search_id = queue(client)
    _claim_as_dead_worker(app, search_id, "elsewhere:1:a", expired=True)
    with app.state.sessionmaker() as session:
        session.get(Search, search_id).attempts = settings.max_attempts
        session.commit()
    assert make_worker(settings, FakeSearch()).run_once() is None
    failed = row(app, search_id)
    assert failed.status == "failed" and "NAS_MAX_ATTEMPTS" in failed.error


def test_max_running_keeps_later_searches_queued(settings: Any, app: Any, client: Any) -> None:
    busy, waiting = queue(client), queue(client)
    _claim_as_dead_worker(app, busy, "elsewhere:1:a", expired=False)
    assert make_worker(settings, FakeSearch()).run_once() is None
    assert row(app, waiting).status == "queued"
    settings.max_running = 2
    assert make_worker(settings, FakeSearch()).run_once() == waiting


def test_concurrent_claims_take_each_search_once(settings: Any, client: Any) -> None:
    ids = {queue(client) for _ in range(8)}
    from service.db import create_db_engine

    claimed: list[str] = []
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        engine = create_db_engine(settings.database_url)
        try:
            for _ in range(6):
                claim = claim_next(
                    engine,
                    worker_id=f"h:{n}:{n}",
                    lease_seconds=60,
                    max_running=100,
                    max_attempts=3,
                )
                if claim is not None:
                    claimed.append(claim.search_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(claimed) == sorted(ids)


def test_request_fields_mirror_search_config(settings: Any) -> None:
    from nas.search import OBJECTIVES, SearchConfig
    from nas.search.config import SearchOptions
    from service.schemas import SearchCreate
    from service.worker import make_search_config

    assert set(SearchCreate.model_fields) <= set(SearchConfig.model_fields)
    assert set(SearchConfig.model_fields) - set(SearchCreate.model_fields) == {
        "storage",
        "mlflow_uri",
        "ray_address",
    }
    assert issubclass(SearchCreate, SearchOptions) and issubclass(SearchConfig, SearchOptions)
    assert SearchCreate.model_json_schema()["properties"]["objectives"]["description"].startswith(
        "Objectives, from " + ", ".join(OBJECTIVES)[:8]
    )
    settings.optuna_storage = "sqlite:///x.db"
    config = make_search_config({"space": "tiny", "budget": 3}, settings)
    assert isinstance(config, SearchConfig)
    assert config.budget == 3 and config.storage == "sqlite:///x.db"
    settings.search_function = "nas.search:no_such_function"
    with pytest.raises(NasError, match="cannot load"):
        _ = Worker(settings).search_fn


def test_an_error_during_shutdown_requeues_instead_of_failing(
    settings: Any, app: Any, client: Any
) -> None:
    search_id = queue(client)
    holder: dict[str, Worker] = {}

    def interrupted_search(config: Any, **kwargs: Any) -> Any:
        holder["worker"].shutdown.set()  # as SIGTERM would, while the search runs
        raise RuntimeError("the Ray driver was interrupted")

    holder["worker"] = Worker(
        settings, search_fn=interrupted_search, config_factory=lambda c, _: c
    )
    holder["worker"].run_forever()
    search = row(app, search_id)
    assert search.status == "queued" and search.error is None and search.attempts == 0
