"""The search engine: Ray Tune + OptunaSearch over a define-by-run space, tracked in MLflow."""

from __future__ import annotations

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
