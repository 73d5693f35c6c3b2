"""The Pareto plot: complete trials on the first two objectives, the front highlighted.

One drawing for every place that shows it (the MLflow artifact ``pareto.png`` and the API's
``GET /searches/{id}/pareto.png``). As in Optuna's visualization module, the data is separated
from the drawing: callers turn their own records into :class:`PlotPoint` s and
:func:`pareto_png` draws them. It uses matplotlib's object API on an Agg canvas (no pyplot, no
global state), so it is safe from any thread and needs no display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PlotPoint", "axes_for", "pareto_png", "write_pareto_png"]

_TRIAL_COLOR, _INFEASIBLE_COLOR, _FRONT_COLOR = "#4c72b0", "#999999", "#c44e52"


@dataclass(frozen=True)
class PlotPoint:
    """One complete trial: its number, objective values, feasibility and front membership."""

    number: int
    values: Mapping[str, float] = field(default_factory=dict)
    feasible: bool = True
    on_front: bool = False


def axes_for(objectives: Sequence[str]) -> tuple[str, str]:
    """``(x, y)``: the second objective against the first, or the first against the trial."""
    if not objectives:
        raise ValueError("a Pareto plot needs at least one objective")
    return (objectives[1] if len(objectives) >= 2 else "trial"), objectives[0]


def _xy(point: PlotPoint, x_name: str, y_name: str) -> tuple[float, float] | None:
    x = float(point.number) if x_name == "trial" else point.values.get(x_name)
    y = point.values.get(y_name)
    if x is None or y is None:
        return None
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def pareto_png(
    points: Sequence[PlotPoint], objectives: Sequence[str], *, title: str | None = None
) -> bytes:
    """The plot as PNG bytes; ``title`` defaults to the trial and front counts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x_name, y_name = axes_for(objectives)
    placed = [(p, xy) for p in points if (xy := _xy(p, x_name, y_name)) is not None]
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    groups = (
        ("trial", [xy for p, xy in placed if p.feasible and not p.on_front], _TRIAL_COLOR, "o"),
        ("infeasible", [xy for p, xy in placed if not p.feasible], _INFEASIBLE_COLOR, "x"),
    )
    for label, xys, color, marker in groups:
        if xys:
            ax.scatter(
                *zip(*xys, strict=True), s=18, c=color, marker=marker, alpha=0.7, label=label
            )
    front = sorted(xy for p, xy in placed if p.on_front)
    if front:
        ax.plot(*zip(*front, strict=True), "o-", c=_FRONT_COLOR, ms=5, label="Pareto front")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    counts = f"{len(placed)} complete trials, {len(front)} on the front"
    ax.set_title(f"{title} · {counts}" if title else counts, fontsize=10)
    ax.grid(True, alpha=0.3)
    if placed:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_pareto_png(
    points: Sequence[PlotPoint],
    objectives: Sequence[str],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Write :func:`pareto_png` to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(pareto_png(points, objectives, title=title))
    return path
