"""End to end on the compose topology, started by hand on this machine (see conftest.py).

The service joins the cluster as a node without CPUs (NAS_RAY_JOIN, as its container does).
A search submitted through the REST API runs as a Ray driver in the service's worker, its
trials spread over the two Ray nodes (one CPU each, two concurrent trials), its study lands in
PostgreSQL and its runs in the MLflow server. Mid-search the second node is killed (SIGKILL of
its whole process tree) while one of its trials runs: that trial fails, the search goes on on
the head and finishes its budget with every trial accounted for. The trial function
(cluster_trials.py) orders the trials so this holds whichever node is faster.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from cluster_topology import DOCKER, Cluster, alive_nodes, api, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BUDGET = 4
SEARCH = {
    "space": "tiny",
    "dataset": "synthetic",
    "budget": BUDGET,
    "epochs": 1,
    "batch_size": 128,
    "concurrency": 2,
    "cpus_per_trial": 1,
    "device": "cpu",
    "name": "cluster-it",
}


def _trials(cluster: Cluster, search_id: str) -> list[dict[str, Any]]:
    page = api(cluster.service, "GET", f"/searches/{search_id}/trials?limit=100", cluster.api_key)
    return page["data"]


def _node(trial: dict[str, Any]) -> str | None:
    return (trial.get("metrics") or {}).get("ray_node_id")


def test_compose_health_checks_pass_against_the_running_topology(cluster: Cluster) -> None:
    """The health-check commands of docker/compose.yaml, run by hand against this topology."""
    check = [sys.executable, str(DOCKER / "healthcheck.py")]
    commands = {
        "ray-head": ["ray", "health-check", "--address", cluster.head.gcs_address],
        "mlflow": [*check, "http", f"{cluster.mlflow.url}/health"],
        "api": [*check, "http", f"{cluster.service.url}/health"],
        "worker": [*check, "database", cluster.service_db_url],
        "ray-worker": [*check, "raylet"],
    }
    for name, argv in commands.items():
        done = subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (name, done.stderr[-2000:])
    # and they fail when what they check is not there
    stranger = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN"}
    done = subprocess.run(commands["ray-head"], env=stranger, capture_output=True, timeout=60)
    assert done.returncode != 0, "the head refuses a client without the cluster's token"
    down = [*check, "http", f"http://127.0.0.1:{free_port()}/health"]
    assert subprocess.run(down, env=cluster.env, timeout=60).returncode == 1


def test_search_spreads_over_ray_nodes_and_survives_losing_one(cluster: Cluster) -> None:
    head, worker = cluster.head.node_id, cluster.worker.node_id
    assert head and worker and head != worker
    search = api(cluster.service, "POST", "/searches", cluster.api_key, SEARCH)
    sid = search["id"]

    # 1. Wait until the second node has finished a trial and holds the next one.
    def worker_busy() -> bool:
        done_there = [
            t for t in _trials(cluster, sid) if t["state"] == "COMPLETE" and _node(t) == worker
        ]
        held = list(cluster.marks.glob(f"{worker}-*.held"))
        return bool(done_there) and bool(held)

    try:
        wait_for(worker_busy, 100, "a trial finished and one running on the second node")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{cluster.logs()}") from exc

    # 2. Lose the second node while its trial runs.
    cluster.worker.proc.kill()

    # 3. The search still finishes its budget.
    def finished() -> bool:
        state = api(cluster.service, "GET", f"/searches/{sid}", cluster.api_key)["status"]
        return state in ("completed", "failed", "cancelled")

    try:
        wait_for(finished, 120, "the search to finish", interval=1.0)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{cluster.logs()}") from exc
    search = api(cluster.service, "GET", f"/searches/{sid}", cluster.api_key)
    assert search["status"] == "completed", f"{search}\n{cluster.logs()}"
    assert search["progress"]["done"] == BUDGET

    trials = _trials(cluster, sid)
    assert sorted(t["number"] for t in trials) == list(range(BUDGET)), trials
    assert {t["state"] for t in trials} <= {"COMPLETE", "FAIL"}
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    failed = [t for t in trials if t["state"] == "FAIL"]
    # Trials ran on both nodes ...
    assert {_node(t) for t in complete} == {head, worker}
    # ... and the one held on the lost node failed as a crashed worker, nothing else did.
    assert len(failed) == 1, failed
    assert "Ray worker failed" in (failed[0]["error"] or ""), failed[0]
    assert not any(t["interrupted"] for t in trials)
    wait_for(
        lambda: (
            {n["NodeID"] for n in alive_nodes(cluster.head.gcs_address, cluster.env)}
            == {head, cluster.api_node_id}
        ),
        30,
        "the head to list the lost node as dead",
        interval=1.0,
    )

    # The study is in PostgreSQL, with every trial finished.
    import optuna

    study = optuna.load_study(study_name=search["study_name"], storage=cluster.optuna_url)
    states = sorted(t.state.name for t in study.get_trials(deepcopy=False))
    assert states == sorted(t["state"] for t in trials)
    assert study.user_attrs  # the config and versions live there (nas.search.store)

    # The runs are in the MLflow server: the parent and one child per trial, with artifacts.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cluster.mlflow.url)
    parent = client.get_run(search["mlflow_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        max_results=100,
    )
    assert sorted(r.info.run_id for r in children) == sorted(t["mlflow_run_id"] for t in trials)
    by_status = sorted(r.info.status for r in children)
    assert by_status == sorted(["FINISHED"] * len(complete) + ["FAILED"] * len(failed))
    one = next(r for r in children if r.info.status == "FINISHED")
    assert "arch.json" in [a.path for a in client.list_artifacts(one.info.run_id)]
    assert one.data.metrics["latency_ms"] > 0
