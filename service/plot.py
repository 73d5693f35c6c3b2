"""The API's Pareto plot: a search's stored trials drawn by :mod:`nas.pareto_plot`."""

from __future__ import annotations

from collections.abc import Sequence

from nas.pareto_plot import PlotPoint
from nas.pareto_plot import pareto_png as draw_pareto
from service.models import Search, Trial

__all__ = ["pareto_png"]


def pareto_png(search: Search, trials: Sequence[Trial]) -> bytes:
    """PNG bytes: the complete ``trials`` on the search's first two objectives (or the first
    objective against the trial number), the front highlighted."""
    points = [
        PlotPoint(t.number, dict(t.values or {}), bool(t.feasible), bool(t.on_front))
        for t in trials
    ]
    return draw_pareto(points, list(search.objectives), title=f"{search.id} ({search.status})")
