"""A search whose trials cannot fit the cluster fails at once with one line naming the
resource and what the cluster has; it never sits in the queue running nothing."""

from __future__ import annotations

from typing import Any

import pytest

from nas.errors import NasError
from nas.search import SearchConfig
from nas.search.resources import check_resources
from service.worker import Worker


@pytest.fixture
def no_gpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Ray started yet, no RAY_ADDRESS, two CPUs and no CUDA device."""
    import ray
    import torch

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"gpus_per_trial": 2}, "gpus_per_trial=2.0 but the Ray cluster has only 0 GPUs"),
        ({"gpus_per_trial": 0.5}, "gpus_per_trial=0.5 but the Ray cluster has only 0 GPUs"),
        ({"cpus_per_trial": 3}, "cpus_per_trial=3 but the Ray cluster has only 2 CPUs"),
        ({"device": "cuda"}, "device 'cuda' was asked for but the Ray cluster has no GPU"),
    ],
)
def test_a_trial_the_local_machine_cannot_hold_is_refused_before_ray_starts(
    no_gpu_machine: None, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(NasError) as caught:
        check_resources(SearchConfig(space="tiny", **fields))
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text
    assert "(it has 2 CPUs and 0 GPUs)" in text
    check_resources(SearchConfig(space="tiny", cpus_per_trial=2))  # what fits passes


def test_the_service_fails_such_a_search_and_runs_the_next(
    no_gpu_machine: None, settings: Any, app: Any, client: Any, nas_home: Any
) -> None:
    from nas.search import run_search

    nas_home.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={"optuna_storage": f"sqlite:///{nas_home / 'optuna.db'}", "mlflow_uri": None}
    )
    body = {"space": "tiny", "dataset": "synthetic", "budget": 2, "epochs": 1}
    stuck = client.post("/searches", json={**body, "gpus_per_trial": 2}).json()["id"]
    nxt = client.post("/searches", json=body).json()["id"]
    ran: list[str] = []

    def search_fn(config: Any, **kwargs: Any) -> Any:
        ran.append(kwargs["search_id"])
        if config.gpus_per_trial:  # the real function, up to its check
            return run_search(config, **kwargs)
        return None

    worker = Worker(settings, search_fn=search_fn)
    assert worker.run_forever(max_searches=2) == 2
    failed = client.get(f"/searches/{stuck}").json()
    assert failed["status"] == "failed"
    assert failed["error"].startswith("gpus_per_trial=2.0 but the Ray cluster has only 0 GPUs")
    assert client.get(f"/searches/{stuck}/trials").json()["count"] == 0
    assert ran == [stuck, nxt]
    assert client.get(f"/searches/{nxt}").json()["status"] == "completed"
