"""The request's ``latency_device`` reaches the search a worker runs."""

from __future__ import annotations

from typing import Any

import pytest

from service.models import Search
from service.worker import make_search_config

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _stored_config(app: Any, client: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/searches", json=body)
    assert response.status_code == 202, response.text
    with app.state.sessionmaker() as session:
        return dict(session.get(Search, response.json()["id"]).config)


@sqlite_only
def test_latency_device_goes_from_the_request_to_the_search_config(
    app: Any, client: Any, settings: Any
) -> None:
    body = {"space": "tiny", "budget": 2, "device": "cpu", "latency_device": "cuda"}
    config = make_search_config(_stored_config(app, client, body), settings)
    assert config.latency_device == "cuda" and config.device == "cpu"

    # Left out: the training device, as for a search queued before the field existed.
    stored = _stored_config(app, client, {"space": "tiny", "budget": 2})
    assert "latency_device" not in stored
    assert make_search_config(stored, settings).latency_device is None

    bad = client.post("/searches", json={"space": "tiny", "latency_device": "tpu"})
    assert bad.status_code == 422, bad.text
    assert "latency_device" in bad.json()["detail"]
