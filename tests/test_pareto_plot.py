"""The one Pareto plot (:mod:`nas.pareto_plot`) and its two callers: MLflow and the API."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from nas.pareto_plot import PlotPoint, axes_for, pareto_png, write_pareto_png

POINTS = [
    PlotPoint(0, {"accuracy": 0.9, "latency_ms": 3.0}, on_front=True),
    PlotPoint(1, {"accuracy": 0.7, "latency_ms": 1.0}, on_front=True),
    PlotPoint(2, {"accuracy": 0.6, "latency_ms": 2.0}),
    PlotPoint(3, {"accuracy": 0.95, "latency_ms": 9.0}, feasible=False),
    PlotPoint(4, {"accuracy": float("nan"), "latency_ms": 2.0}),  # not drawn
    PlotPoint(5, {"latency_ms": 2.0}),  # missing objective: not drawn
]


def _image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(png))


@pytest.mark.parametrize(
    ("objectives", "axes"),
    [
        (["accuracy", "latency_ms"], ("latency_ms", "accuracy")),
        (["accuracy"], ("trial", "accuracy")),
        (["accuracy", "latency_ms", "params"], ("latency_ms", "accuracy")),
    ],
)
def test_axes_and_png(objectives: list[str], axes: tuple[str, str]) -> None:
    assert axes_for(objectives) == axes
    assert _image(pareto_png(POINTS, objectives)).size == (640, 480)


@pytest.mark.parametrize("points", [[], POINTS[4:]])
def test_nothing_to_draw_is_still_a_plot(points: list[PlotPoint]) -> None:
    assert _image(pareto_png(points, ["accuracy", "latency_ms"], title="s1 (queued)"))


def test_no_objective_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one objective"):
        pareto_png(POINTS, [])


def test_write_pareto_png(tmp_path: Path) -> None:
    path = write_pareto_png(POINTS, ["accuracy", "latency_ms"], tmp_path / "p.png")
    assert path.read_bytes() == pareto_png(POINTS, ["accuracy", "latency_ms"])


def test_service_plot_draws_its_trials_with_the_same_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import service.plot
    from service.models import Search, Trial

    seen: dict[str, object] = {}

    def fake(points: list[PlotPoint], objectives: list[str], *, title: str | None) -> bytes:
        seen.update(points=points, objectives=objectives, title=title)
        return b"png"

    monkeypatch.setattr(service.plot, "draw_pareto", fake)
    search = Search(id="s1", status="completed", objectives=["accuracy", "latency_ms"])
    trials = [
        Trial(number=0, values={"accuracy": 0.9, "latency_ms": 3.0}, feasible=True, on_front=True),
        Trial(number=1, values=None, feasible=False, on_front=False),
    ]
    assert service.plot.pareto_png(search, trials) == b"png"
    assert seen["points"] == [
        PlotPoint(0, {"accuracy": 0.9, "latency_ms": 3.0}, True, True),
        PlotPoint(1, {}, False, False),
    ]
    assert seen["objectives"] == ["accuracy", "latency_ms"] and seen["title"] == "s1 (completed)"
