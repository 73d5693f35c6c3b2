"""Addresses in the MLflow UI: the page of one search's trial runs, and the hint that
``nas search`` prints at its end (how to start ``mlflow ui``, then where to look)."""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from nas.tracking import EXPERIMENT, KIND_TAG, SEARCH_TAG

__all__ = ["MLFLOW_UI", "results_hint", "runs_url"]

#: Where ``mlflow ui`` listens by default.
MLFLOW_UI = "http://127.0.0.1:5000"

log = logging.getLogger(__name__)


def runs_url(base: str, experiment_id: str, search_id: str, order_by: str = "accuracy") -> str:
    """The MLflow UI page listing one search's trial runs, best ``order_by`` first."""
    query = {
        "workflowType": "machine_learning",
        "searchFilter": f"tags.`{SEARCH_TAG}` = '{search_id}' and tags.`{KIND_TAG}` = 'trial'",
        "orderByKey": f"metrics.`{order_by}`",
        "orderByAsc": "false",
    }
    url = f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?"
    return url + urlencode(query, quote_via=quote)


def results_hint(uri: str, search_id: str, order_by: str = "accuracy") -> str:
    """Where to see ``search_id``'s trials in the MLflow UI: the command to start it for a
    local store, then the address (never raises)."""
    remote = uri.startswith(("http://", "https://"))
    experiment_id = None
    try:
        if remote:  # one short request: MlflowClient retries a server that is down for minutes
            import httpx

            reply = httpx.get(
                f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name",
                params={"experiment_name": EXPERIMENT},
                timeout=5.0,
            )
            experiment_id = reply.raise_for_status().json()["experiment"]["experiment_id"]
        else:
            from mlflow.tracking import MlflowClient

            exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(EXPERIMENT)
            experiment_id = exp.experiment_id if exp is not None else None
    except Exception as exc:
        log.debug("cannot read the MLflow experiment: %s", exc)
    base = uri if remote else MLFLOW_UI
    url = f"{base} (experiment '{EXPERIMENT}')"
    if experiment_id is not None:
        url = runs_url(base, experiment_id, search_id, order_by)
    if remote:
        return f"MLflow:        {url}"
    return f"MLflow:        mlflow ui --backend-store-uri {uri}\n               then open {url}"
