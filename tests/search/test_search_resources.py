"""Latency device and per-trial resources, and where a trial ran (no Ray search)."""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from nas.errors import NasError
from nas.search import SearchConfig, TrialRecord, resources
from nas.search.resources import eval_settings
from nas.search.resources import resolve_resources as _resources
from nas.search.trainable import (
    ERROR,
    FAILED,
    METRICS,
    evaluate_candidate,
    placement,
    reuse_result,
)

WHERE = {"ray_node_id": "node-a", "hostname": "host-a"}


def test_latency_device_is_validated_and_optional() -> None:
    assert SearchConfig().latency_device is None
    for value in ("cpu", "cuda"):
        config = SearchConfig(latency_device=value)
        assert SearchConfig.model_validate(config.model_dump(mode="json")) == config
    with pytest.raises(ValidationError, match="latency_device"):
        SearchConfig(latency_device="tpu")
    # A config stored before the field existed still loads (as study user attributes do).
    stored = SearchConfig(space="tiny").model_dump(mode="json")
    del stored["latency_device"]
    assert SearchConfig.model_validate(stored).latency_device is None


@pytest.mark.parametrize(
    ("latency_device", "device", "expected"),
    [(None, "cpu", None), ("cuda", "cpu", "cuda"), ("cpu", "cuda", "cpu")],
)
def test_latency_device_reaches_the_eval_settings(
    latency_device: str | None, device: str, expected: str | None
) -> None:
    config = SearchConfig(space="tiny", latency_device=latency_device, cpus_per_trial=2)
    settings = eval_settings(config, device)
    assert settings.latency_device == expected
    assert settings.device == device and settings.threads == 2


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The resources ``ray.cluster_resources()`` reports (a dict the test fills in)."""
    import ray

    resources: dict[str, float] = {"CPU": 8.0}
    monkeypatch.setattr(ray, "cluster_resources", lambda: dict(resources))
    return resources


def test_cuda_latency_without_a_gpu_fails_before_any_trial(cluster: dict[str, float]) -> None:
    config = SearchConfig(latency_device="cuda", device="cpu")
    with pytest.raises(NasError, match=r"latency_device 'cuda'.*no GPU.*--latency-device cpu"):
        _resources(config)
    with pytest.raises(NasError, match="latency_device 'cuda'"):
        _resources(SearchConfig(latency_device="cuda"))  # auto trains on the CPU here
    assert _resources(SearchConfig(latency_device="cpu")) == ("cpu", 0, 8)
    assert _resources(SearchConfig()) == ("cpu", 0, 8)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # CUDA latency after CPU training: a whole GPU per trial unless told otherwise.
        ({"device": "cpu", "latency_device": "cuda"}, ("cpu", 1.0, 2)),
        ({"device": "cpu", "latency_device": "cuda", "gpus_per_trial": 0.25}, ("cpu", 0.25, 8)),
        ({"device": "cpu", "latency_device": "cuda", "gpus_per_trial": 0.5}, ("cpu", 0.5, 4)),
        # Training on the GPU and timing on the CPU still reserves the GPU for training.
        ({"latency_device": "cpu"}, ("cuda", 1.0, 2)),
        ({"device": "cpu", "latency_device": "cpu"}, ("cpu", 0, 8)),
        ({"device": "cpu", "latency_device": "cuda", "concurrency": 3}, ("cpu", 1.0, 3)),
    ],
)
def test_cuda_latency_reserves_gpus(
    cluster: dict[str, float], fields: dict[str, Any], expected: tuple[str, float, int]
) -> None:
    cluster["GPU"] = 2.0
    assert _resources(SearchConfig(**fields)) == expected


def test_more_gpus_per_trial_than_the_cluster_has(cluster: dict[str, float]) -> None:
    cluster["GPU"] = 1.0
    config = SearchConfig(device="cpu", latency_device="cuda", gpus_per_trial=2)
    with pytest.raises(NasError, match=r"gpus_per_trial=2\.0 but the Ray cluster has only 1 GPU"):
        _resources(config)


def _metrics(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
    return {"accuracy": 0.5, "latency_ms": 2.0, "ray_node_id": "claimed"}


def _broken(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
    raise RuntimeError("broken candidate")


def test_a_trial_result_says_where_it_ran() -> None:
    objectives = ["accuracy", "latency_ms"]
    done = evaluate_candidate(None, None, None, objectives, _metrics, None, WHERE)
    assert done[FAILED] is False
    metrics = json.loads(done[METRICS])
    assert metrics["ray_node_id"] == "node-a" and metrics["hostname"] == "host-a"
    assert metrics["accuracy"] == 0.5  # the objectives stay numbers

    failed = evaluate_candidate(None, None, None, objectives, _broken, None, WHERE)
    assert failed[FAILED] is True and "broken candidate" in failed[ERROR]
    assert json.loads(failed[METRICS]) == WHERE

    earlier = {"accuracy": 0.5, "latency_ms": 2.0, "ray_node_id": "node-b", "hostname": "b"}
    reused = reuse_result({"from": 3, "metrics": earlier}, objectives, None, WHERE)
    assert json.loads(reused[METRICS]) == earlier | WHERE | {"reused_from_trial": 3}


def test_placement_outside_ray_has_the_host_name() -> None:
    import ray

    where = placement()
    assert where["hostname"] == socket.gethostname()
    assert ("ray_node_id" in where) == ray.is_initialized()


def test_child_run_is_tagged_with_where_the_trial_ran(mlflow_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from nas.tracking import SearchTracker

    tracker = SearchTracker(mlflow_uri)
    tracker.start_parent(
        search_id="splace01",
        study_name="splace01",
        config={"space": "tiny"},
        space={"name": "tiny"},
        versions={},
        storage="sqlite:///x.db",
    )
    now = datetime.now()
    record = TrialRecord(
        number=0,
        state="COMPLETE",
        values={"accuracy": 0.5},
        metrics={"accuracy": 0.5, "latency_ms": 2.0} | WHERE,
        started_at=now,
        finished_at=now,
    )
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(tracker.log_trial(record, "splace01"))
    assert run.data.tags["nas.ray_node_id"] == "node-a"
    assert run.data.tags["nas.hostname"] == "host-a"
    assert set(run.data.metrics) == {"accuracy", "latency_ms"}  # strings are tags only


def test_only_rays_local_token_notice_is_hidden(caplog: pytest.LogCaptureFixture) -> None:
    resources._quiet_local_token_notice()
    resources._quiet_local_token_notice()  # once per logger
    logger = logging.getLogger(resources._TOKEN_LOGGER)
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=resources._TOKEN_LOGGER):
        logger.warning("%s Set RAY_AUTH_MODE=disabled to opt out.", resources.TOKEN_NOTICE)
        logger.warning("Token authentication is disabled for this Ray cluster.")
    assert [r.getMessage() for r in caplog.records] == [
        "Token authentication is disabled for this Ray cluster."
    ]
