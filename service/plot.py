"""The Pareto plot as PNG bytes (matplotlib's object API with the Agg canvas, thread-safe)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from service.models import Search, Trial

__all__ = ["pareto_png"]


def pareto_png(search: Search, trials: Sequence[Trial]) -> bytes:
    """Complete trials on the first two objectives (or objective vs trial number)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    objectives = list(search.objectives)
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    def coords(rows: Sequence[Trial]) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for t in rows:
            vals = t.values or {}
            if len(objectives) >= 2:
                x, y = vals.get(objectives[1]), vals.get(objectives[0])
            else:
                x, y = t.number, vals.get(objectives[0])
            if x is not None and y is not None:
                xs.append(float(x))
                ys.append(float(y))
        return xs, ys

    feasible = [t for t in trials if t.feasible and not t.on_front]
    infeasible = [t for t in trials if not t.feasible]
    front = sorted((t for t in trials if t.on_front), key=lambda t: coords([t])[0] or [0])
    ax.scatter(*coords(feasible), s=14, c="0.6", label="trials")
    if infeasible:
        ax.scatter(*coords(infeasible), s=14, c="0.6", marker="x", label="infeasible")
    if front:
        ax.plot(*coords(front), "o-", c="tab:red", ms=5, label="Pareto front")
    ax.set_xlabel(objectives[1] if len(objectives) >= 2 else "trial")
    ax.set_ylabel(objectives[0])
    title = f"{search.id} ({search.status}, {len(trials)} complete trials)"
    ax.set_title(title, fontsize=10)
    if trials:
        ax.legend(loc="best", fontsize=8)
    ax.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
