"""The loopback cluster fixture: Ray head + second Ray node, MLflow server and ``nas serve`` on
scratch PostgreSQL databases, all started through docker/entrypoint.sh and torn down after the
module, whatever happens."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cluster_topology import (
    PG_ADMIN,
    Cluster,
    Proc,
    ScratchDatabases,
    alive_nodes,
    free_port,
    process_env,
    start_mlflow,
    start_ray_head,
    start_ray_worker,
    start_service,
    stop_all,
    sweep,
)

HERE = Path(__file__).resolve().parent


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=5):
            return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The compose topology on this machine (two 1-CPU Ray nodes, so concurrent trials spread)."""
    if not _postgres_available():
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN}")
    work = Path(tempfile.mkdtemp(prefix="nasit-"))  # short: Ray's socket paths must fit
    dbs = ScratchDatabases()
    procs: list[Proc] = []
    marks = work / "marks"
    # Ray nodes import the trial function from this folder, as the service's worker does.
    env = process_env(PYTHONPATH=str(HERE), NAS_IT_MARKS=str(marks))
    api_key = secrets.token_urlsafe(16)
    try:
        service_url = dbs.create("service")
        optuna_url = dbs.create("optuna")
        mlflow_url = dbs.create("mlflow")
        gcs_port, mlflow_port = free_port(), free_port()
        with ThreadPoolExecutor(4) as pool:
            futures: dict[str, Any] = {
                "mlflow": pool.submit(start_mlflow, work, env, mlflow_url, port=mlflow_port),
                # Head trials wait for one on the second node to finish (cluster_trials).
                "head": pool.submit(
                    start_ray_head, work, env, 1, port=gcs_port, NAS_IT_WAIT_FOR_PEER="1"
                ),
            }
            futures["worker"] = pool.submit(
                lambda: start_ray_worker(
                    work, env | {"NAS_IT_HOLD_AFTER": "1"}, futures["head"].result()
                )
            )
            # The service joins the cluster (NAS_RAY_JOIN, as in compose) once the head runs.
            futures["service"] = pool.submit(
                lambda: start_service(
                    work,
                    env,
                    api_key=api_key,
                    workers=1,
                    DATABASE_URL=service_url,
                    NAS_OPTUNA_STORAGE=optuna_url,
                    MLFLOW_TRACKING_URI=f"http://127.0.0.1:{mlflow_port}",
                    RAY_ADDRESS=futures["head"].result().gcs_address,
                    NAS_TRIAL_FUNCTION="cluster_trials:evaluate_on_node",
                    NAS_POLL_SECONDS="1",
                )
            )
            started: dict[str, Any] = {}
            errors: list[BaseException] = []
            for name, future in futures.items():
                try:
                    started[name] = future.result()
                    procs.append(started[name].proc)
                except BaseException as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
        nodes = alive_nodes(started["head"].gcs_address, env)
        ids = {started["head"].node_id, started["worker"].node_id}
        api_nodes = [n for n in nodes if n["NodeID"] not in ids]
        assert len(api_nodes) == 1 and not api_nodes[0]["Resources"].get("CPU"), nodes
        yield Cluster(
            work=work,
            env=env,
            head=started["head"],
            worker=started["worker"],
            mlflow=started["mlflow"],
            service=started["service"],
            api_key=api_key,
            optuna_url=optuna_url,
            service_db_url=service_url,
            marks=marks,
            procs=procs,
            api_node_id=api_nodes[0]["NodeID"],
        )
    finally:
        stop_all(procs, timeout=5.0)
        sweep(str(work))  # what left its parent: the Ray node the service joined with
        if os.environ.get("NAS_IT_KEEP_LOGS"):  # for debugging: keep the processes' logs
            shutil.copytree(work / "logs", os.environ["NAS_IT_KEEP_LOGS"], dirs_exist_ok=True)
        dbs.drop()
        shutil.rmtree(work, ignore_errors=True)
