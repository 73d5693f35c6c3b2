"""The search engine: Ray Tune runs trials that a module-level Tune ``Searcher`` asks of an
Optuna study (ask/tell; :mod:`nas.search.searcher`) over a define-by-run space, tracked in
MLflow.

Names load their module on first use, so that ``nas.search.config`` (the CLI's flags) imports
without the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas._lazy import lazy_getattr

if TYPE_CHECKING:
    from nas.search.config import OBJECTIVES, SAMPLERS, SearchConfig
    from nas.search.engine import ensure_ray, run_search
    from nas.search.records import SearchProgress, SearchResult, TrialRecord
    from nas.search.store import SearchNotFound, TrialNotFound, list_searches, load_search

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "SearchConfig",
    "SearchNotFound",
    "SearchProgress",
    "SearchResult",
    "TrialNotFound",
    "TrialRecord",
    "ensure_ray",
    "list_searches",
    "load_search",
    "run_search",
]

_LAZY = {
    "OBJECTIVES": "config",
    "SAMPLERS": "config",
    "SearchConfig": "config",
    "ensure_ray": "engine",
    "run_search": "engine",
    "SearchProgress": "records",
    "SearchResult": "records",
    "TrialRecord": "records",
    "SearchNotFound": "store",
    "TrialNotFound": "store",
    "list_searches": "store",
    "load_search": "store",
}

__getattr__ = lazy_getattr(__name__, _LAZY)
