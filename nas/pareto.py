"""Pareto fronts and hypervolume for N objectives: pure functions, no Ray, MLflow or Optuna.

Semantics (shared by the CLI, the service and the MLflow ``pareto=true`` tags):

- ``directions`` holds one of ``"maximize"``/``"minimize"`` per objective (``"max"``/``"min"``
  are accepted as aliases). Internally maximised objectives are negated so that every
  objective is a loss, as in Optuna's ``_multi_objective.py``.
- Row ``a`` *dominates* row ``b`` when ``a`` is no worse in every objective and strictly better
  in at least one.
- The front is the set of rows no other row dominates. Duplicated rows do not dominate each
  other, so every copy of a non-dominated row is on the front (ties are kept, never broken
  arbitrarily).
- A row with a NaN (or ``None``) in any objective is not comparable: it is never on the front
  and never dominates anything. ``+inf``/``-inf`` are ordinary (extreme) values.
- With ``feasible`` given, only feasible rows are candidates and only feasible rows dominate;
  an infeasible row is never on the front (Deb's constrained domination restricted to the
  feasible set, as Optuna does). When no row is feasible the front is empty.
- Indices are returned in ascending order.

``hypervolume`` measures the region dominated by the rows and bounded by ``reference`` (a point
that every useful row must strictly improve on in every objective). Rows that do not strictly
dominate the reference, and rows with NaN, add nothing. It is exact in any dimension: a sweep
in 2-D and recursive slicing along the last objective above that (fine for the tens to
hundreds of points and 2-4 objectives a search produces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["dominates", "hypervolume", "normalize_directions", "pareto_front"]

_ALIASES = {"maximize": "maximize", "max": "maximize", "minimize": "minimize", "min": "minimize"}


def normalize_directions(directions: Sequence[str]) -> list[str]:
    """``directions`` as ``"maximize"``/``"minimize"`` strings; raises ``ValueError`` otherwise."""
    if isinstance(directions, str):
        raise ValueError(f"directions must be a list of strings, got the string {directions!r}")
    out = []
    for d in directions:
        key = str(d).lower()
        if key not in _ALIASES:
            raise ValueError(f"direction {d!r} is not one of 'maximize', 'minimize'")
        out.append(_ALIASES[key])
    if not out:
        raise ValueError("at least one objective direction is needed")
    return out


def _as_losses(values: Sequence[Sequence[float | None]], directions: Sequence[str]) -> np.ndarray:
    """A float (n, m) array where smaller is better in every column; NaN marks missing values."""
    dirs = normalize_directions(directions)
    m = len(dirs)
    rows = []
    for i, row in enumerate(values):
        row = list(row)
        if len(row) != m:
            raise ValueError(f"row {i} has {len(row)} values but there are {m} directions")
        rows.append([math.nan if v is None else float(v) for v in row])
    arr = np.asarray(rows, dtype=float).reshape(len(rows), m)
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
    with np.errstate(invalid="ignore"):
        return arr * sign


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether row ``a`` dominates row ``b`` (False when either has a NaN)."""
    losses = _as_losses([a, b], directions)
    if np.isnan(losses).any():
        return False
    return bool(np.all(losses[0] <= losses[1]) and np.any(losses[0] < losses[1]))


def pareto_front(
    values: Sequence[Sequence[float | None]],
    directions: Sequence[str],
    feasible: Sequence[bool] | None = None,
) -> list[int]:
    """Indices (ascending) of the non-dominated rows of ``values``; see the module docstring."""
    losses = _as_losses(values, directions)
    n = losses.shape[0]
    if feasible is not None and len(feasible) != n:
        raise ValueError(f"feasible has {len(feasible)} entries but there are {n} rows")
    candidates = [
        i
        for i in range(n)
        if not np.isnan(losses[i]).any() and (feasible is None or bool(feasible[i]))
    ]
    if not candidates:
        return []
    # Lexicographic order: a row can only be dominated by rows before it or equal to it, and
    # anything dominated is dominated by a front member, so checking the front so far suffices.
    order = sorted(candidates, key=lambda i: tuple(losses[i]))
    front: list[int] = []
    front_losses = np.empty((0, losses.shape[1]))
    for i in order:
        row = losses[i]
        if front:
            no_worse = np.all(front_losses <= row, axis=1)
            better = np.any(front_losses < row, axis=1)
            if np.any(no_worse & better):
                continue
        front.append(i)
        front_losses = np.vstack([front_losses, row])
    return sorted(front)


def hypervolume(
    values: Sequence[Sequence[float | None]],
    directions: Sequence[str],
    reference: Sequence[float],
) -> float:
    """The hypervolume dominated by ``values`` relative to ``reference`` (exact, N objectives)."""
    losses = _as_losses(values, directions)
    ref = _as_losses([list(reference)], directions)[0]
    if np.isnan(ref).any() or np.isinf(ref).any():
        raise ValueError(f"reference must be finite, got {list(reference)}")
    if losses.shape[0] == 0:
        return 0.0
    keep = ~np.isnan(losses).any(axis=1) & np.all(losses < ref, axis=1)
    pts = losses[keep]
    if pts.shape[0] == 0:
        return 0.0
    if np.isinf(pts).any():
        return math.inf
    front = pts[pareto_front(pts.tolist(), ["minimize"] * pts.shape[1])]
    front = np.unique(front, axis=0)
    return float(_hv(front, ref))


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of minimisation ``points`` (all strictly below ``ref``)."""
    n, m = points.shape
    if n == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - points[:, 0].min())
    if m == 2:
        pts = points[np.lexsort((points[:, 1], points[:, 0]))]
        volume = 0.0
        best_y = ref[1]
        for x, y in pts:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    # Slice along the last objective: between consecutive levels the cross-section is the
    # (m-1)-D hypervolume of every point at or below the level.
    pts = points[np.argsort(points[:, -1], kind="stable")]
    volume = 0.0
    for k in range(n):
        upper = pts[k + 1, -1] if k + 1 < n else ref[-1]
        height = upper - pts[k, -1]
        if height <= 0:
            continue
        section = pts[: k + 1, :-1]
        section = section[pareto_front(section.tolist(), ["minimize"] * (m - 1))]
        volume += height * _hv(np.unique(section, axis=0), ref[:-1])
    return float(volume)
