"""Backbone families by name: what a search space needs to build and check a network.

A family knows its default stem and head widths, the output channels of a stage, the
channel counts its attention blocks see (so a space can offer only valid blocks) and how to
build a network from explicit :class:`~nas.backbones.stage.StageSpec` stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from nas.backbones.mobilenet import (
    build_mobilenet_v2,
    mobilenet_attention_sites,
    mobilenet_out_channels,
    mobilenet_stem_stride,
)
from nas.backbones.resnet import (
    build_resnet,
    resnet_attention_sites,
    resnet_out_channels,
    resnet_stem_stride,
)
from nas.backbones.stage import Site, StageSpec

__all__ = ["FAMILIES", "Family", "get_family"]


@dataclass(frozen=True)
class Family:
    """A backbone family (see the module docstring)."""

    name: str
    summary: str
    stem_width: int
    head_width: int | None
    stem_stride: Callable[[bool], int]
    out_channels: Callable[[StageSpec], int]
    attention_sites: Callable[[int, StageSpec], set[Site]]
    build: Callable[..., nn.Module]
    default_expansion: int = 1
    placements: tuple[str, ...] = ("post",)

    def build_model(
        self,
        stages: Sequence[StageSpec],
        *,
        num_classes: int,
        in_channels: int,
        small_input: bool,
        stem_width: int | None = None,
        head_width: int | None = None,
    ) -> nn.Module:
        """Build the network (``None`` widths take the family's defaults)."""
        kwargs: dict[str, int] = {"stem_width": stem_width or self.stem_width}
        if self.head_width is not None:
            kwargs["head_width"] = head_width or self.head_width
        return self.build(
            list(stages),
            num_classes=num_classes,
            in_channels=in_channels,
            small_input=small_input,
            **kwargs,
        )


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="mobilenet_v2",
            summary="MobileNetV2 inverted residuals, attention after the depthwise conv",
            stem_width=32,
            head_width=1280,
            stem_stride=mobilenet_stem_stride,
            out_channels=mobilenet_out_channels,
            attention_sites=mobilenet_attention_sites,
            build=build_mobilenet_v2,
            default_expansion=6,
        ),
        Family(
            name="resnet",
            summary="ResNet bottlenecks, attention before the residual add (or as the 3x3 conv)",
            stem_width=64,
            head_width=None,
            stem_stride=resnet_stem_stride,
            out_channels=resnet_out_channels,
            attention_sites=resnet_attention_sites,
            build=build_resnet,
            default_expansion=4,
            placements=("post", "conv"),
        ),
    )
}


def get_family(name: str) -> Family:
    """The family called ``name``; unknown names raise ``KeyError`` listing the valid ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; valid: {', '.join(FAMILIES)}") from None
