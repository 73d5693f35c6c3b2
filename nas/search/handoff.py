"""The MLflow side of a search run: the tracker, the parent run, the closing summary.

Tracking never fails a search once it runs: a failure of the summary is logged and dropped.
An unusable tracking store is refused before the search starts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nas import workspace
from nas.errors import NasError
from nas.search.attrs import ATTR
from nas.search.store import compute_pareto, fast_sqlite, jsonable

if TYPE_CHECKING:
    from nas.search.records import SearchResult
    from nas.search.run import SearchRun

__all__ = ["finish_tracking", "make_tracker", "start_parent"]

log = logging.getLogger(__name__)


def make_tracker(uri: str | None) -> Any:
    """A :class:`nas.tracking.SearchTracker` for ``uri`` (default: the workspace store)."""
    from nas.tracking import SearchTracker

    fast_sqlite(uri or workspace.mlflow_tracking_uri())  # a child run is ~30 transactions
    try:
        return SearchTracker(uri)
    except Exception as exc:
        where = uri or workspace.mlflow_tracking_uri()
        raise NasError(f"cannot use the MLflow tracking store {where!r}: {exc}") from exc


def start_parent(
    tracker: Any, study: Any, *, search_id: str, config: Any, space: Any, storage_url: str
) -> None:
    """Start (or, on a resume, reopen) the search's parent run; its id becomes an attribute."""
    from nas.search.resources import versions

    parent = tracker.start_parent(
        search_id=search_id,
        study_name=study.study_name,
        config=config.model_dump(mode="json"),
        space=jsonable(space.to_dict()),
        versions=study.user_attrs.get(ATTR["versions"], versions()),
        storage=storage_url,
        run_id=study.user_attrs.get(ATTR["mlflow"]),
    )
    study.set_user_attr(ATTR["mlflow"], parent)


def finish_tracking(run: SearchRun, state: str, result: SearchResult | None = None) -> None:
    """Log the search's summary (trials, front, state) on its parent run; never raises."""
    try:
        trials = result.trials if result else list(run.records.values())
        pareto = result.pareto if result else compute_pareto(trials, run.config.objectives)
        run.tracker.finish(
            trials=trials, pareto=pareto, objectives=run.config.objectives, state=state
        )
    except Exception as exc:
        log.warning("MLflow logging of the search summary failed: %s", exc)
