"""Table-driven tests of nas.pareto: fronts, duplicates, NaN, feasibility, hypervolume."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.pareto import dominates, hypervolume, normalize_directions, pareto_front

MAX_MIN = ["maximize", "minimize"]
NAN = math.nan

FRONT_CASES = [
    # (id, values, directions, feasible, expected front)
    ("empty", [], MAX_MIN, None, []),
    ("single", [[0.5, 3.0]], MAX_MIN, None, [0]),
    ("chain", [[0.9, 1.0], [0.8, 2.0], [0.7, 3.0]], MAX_MIN, None, [0]),
    ("trade-off", [[0.9, 3.0], [0.8, 2.0], [0.7, 1.0]], MAX_MIN, None, [0, 1, 2]),
    ("mixed", [[0.9, 3.0], [0.8, 3.5], [0.7, 1.0], [0.6, 1.0]], MAX_MIN, None, [0, 2]),
    ("duplicates kept", [[0.9, 1.0], [0.9, 1.0], [0.5, 2.0]], MAX_MIN, None, [0, 1]),
    ("tie in one objective", [[0.9, 1.0], [0.9, 2.0]], MAX_MIN, None, [0]),
    ("both minimise", [[1.0, 2.0], [2.0, 1.0], [2.0, 2.0]], ["minimize"] * 2, None, [0, 1]),
    ("both maximise", [[1.0, 2.0], [2.0, 1.0], [2.0, 2.0]], ["maximize"] * 2, None, [2]),
    ("aliases", [[1.0, 2.0], [2.0, 1.0]], ["max", "min"], None, [1]),
    ("nan row excluded", [[NAN, 0.1], [0.5, 2.0]], MAX_MIN, None, [1]),
    ("none row excluded", [[None, 0.1], [0.5, 2.0]], MAX_MIN, None, [1]),
    ("nan never dominates", [[1.0, NAN], [0.5, 2.0]], MAX_MIN, None, [1]),
    ("all nan", [[NAN, NAN]], MAX_MIN, None, []),
    ("inf is a value", [[0.5, math.inf], [0.4, 1.0]], MAX_MIN, None, [0, 1]),
    (
        "infeasible excluded",
        [[0.9, 5.0], [0.8, 2.0], [0.7, 3.0]],
        MAX_MIN,
        [False, True, True],
        [1],
    ),
    ("infeasible do not dominate", [[0.9, 1.0], [0.8, 2.0]], MAX_MIN, [False, True], [1]),
    ("none feasible", [[0.9, 1.0]], MAX_MIN, [False], []),
    ("one objective", [[3.0], [1.0], [1.0], [2.0]], ["minimize"], None, [1, 2]),
    (
        "three objectives",
        [[1, 1, 1], [0, 2, 2], [2, 2, 2], [1, 1, 2]],
        ["minimize"] * 3,
        None,
        [0, 1],
    ),
]


@pytest.mark.parametrize(
    ("values", "directions", "feasible", "expected"),
    [case[1:] for case in FRONT_CASES],
    ids=[case[0] for case in FRONT_CASES],
)
def test_pareto_front(values, directions, feasible, expected):
    assert pareto_front(values, directions, feasible) == expected


HV_CASES = [
    # (id, values, directions, reference, expected)
    ("empty", [], ["minimize"] * 2, [1.0, 1.0], 0.0),
    ("one point", [[0.0, 0.0]], ["minimize"] * 2, [1.0, 1.0], 1.0),
    ("two points", [[0.0, 0.5], [0.5, 0.0]], ["minimize"] * 2, [1.0, 1.0], 0.75),
    (
        "dominated adds nothing",
        [[0.0, 0.5], [0.5, 0.0], [0.6, 0.6]],
        ["minimize"] * 2,
        [1.0, 1.0],
        0.75,
    ),
    ("duplicates once", [[0.0, 0.5], [0.0, 0.5]], ["minimize"] * 2, [1.0, 1.0], 0.5),
    ("outside reference", [[2.0, 0.0], [0.5, 1.0]], ["minimize"] * 2, [1.0, 1.0], 0.0),
    ("accuracy-latency", [[0.9, 2.0], [0.8, 1.0]], MAX_MIN, [0.5, 3.0], 0.4 * 1.0 + 0.3 * 1.0),
    ("nan ignored", [[NAN, 0.0], [0.5, 0.5]], ["minimize"] * 2, [1.0, 1.0], 0.25),
    ("1-D", [[0.25], [0.5]], ["minimize"], [1.0], 0.75),
    ("3-D cube", [[0.0, 0.0, 0.0]], ["minimize"] * 3, [1.0, 2.0, 3.0], 6.0),
    (
        "3-D two boxes",
        [[0.0, 0.0, 0.5], [0.5, 0.5, 0.0]],
        ["minimize"] * 3,
        [1.0, 1.0, 1.0],
        0.5 + 0.25 - 0.125,
    ),
]


@pytest.mark.parametrize(
    ("values", "directions", "reference", "expected"),
    [case[1:] for case in HV_CASES],
    ids=[case[0] for case in HV_CASES],
)
def test_hypervolume(values, directions, reference, expected):
    assert hypervolume(values, directions, reference) == pytest.approx(expected)


def _brute_front(values, directions):
    return [
        i
        for i, a in enumerate(values)
        if not any(dominates(b, a, directions) for j, b in enumerate(values) if j != i)
        and not any(math.isnan(v) for v in a)
    ]


def _inclusion_exclusion_hv(points, ref):
    """Exact hypervolume of minimisation points by inclusion-exclusion over their boxes."""
    pts = [p for p in points if all(x < r for x, r in zip(p, ref, strict=True))]
    total = 0.0
    for k in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, k):
            corner = np.max(np.asarray(subset), axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.asarray(ref) - corner))
    return total


points = st.lists(
    st.lists(st.integers(0, 5).map(float), min_size=3, max_size=3), min_size=0, max_size=7
)


@settings(max_examples=60, deadline=None)
@given(points)
def test_front_matches_brute_force(values):
    directions = ["maximize", "minimize", "minimize"]
    assert pareto_front(values, directions) == _brute_front(values, directions)


@settings(max_examples=60, deadline=None)
@given(points)
def test_hypervolume_matches_inclusion_exclusion(values):
    ref = [5.5, 6.0, 4.5]
    assert hypervolume(values, ["minimize"] * 3, ref) == pytest.approx(
        _inclusion_exclusion_hv(values, ref)
    )


@settings(max_examples=40, deadline=None)
@given(points)
def test_hypervolume_of_front_equals_hypervolume_of_all(values):
    directions = ["maximize", "minimize", "minimize"]
    ref = [-1.0, 6.0, 6.0]
    front = [values[i] for i in pareto_front(values, directions)]
    assert hypervolume(front, directions, ref) == pytest.approx(
        hypervolume(values, directions, ref)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pareto_front([[1.0, 2.0]], ["up", "down"]), "'up'"),
        (lambda: pareto_front([[1.0]], ["minimize", "minimize"]), "row 0 has 1 values"),
        (lambda: pareto_front([[1.0]], ["minimize"], feasible=[True, False]), "feasible"),
        (lambda: normalize_directions("minimize"), "list"),
        (lambda: hypervolume([[1.0]], ["minimize"], [NAN]), "finite"),
    ],
)
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
