"""Building the network of an architecture."""

from __future__ import annotations

from torch import nn

from nas.backbones import StageSpec, get_family
from nas.space.arch import Arch
from nas.space.errors import SpaceError
from nas.space.space import SearchSpace

__all__ = ["build_model"]


def build_model(space: SearchSpace, arch: Arch, num_classes: int | None = None) -> nn.Module:
    """The ``nn.Module`` of ``arch`` for ``space``'s input (``num_classes`` overrides the
    space's; a space without one needs it here, e.g. from the dataset)."""
    classes = num_classes if num_classes is not None else space.num_classes
    if classes is None:
        raise SpaceError(
            space.source, "num_classes", "the space takes it from the dataset: pass num_classes"
        )
    if arch.backbone != space.backbone:
        raise SpaceError(
            space.source, "backbone", f"arch is a {arch.backbone}, the space a {space.backbone}"
        )
    if len(arch.stages) != len(space.stages):
        raise SpaceError(
            space.source,
            "stages",
            f"arch has {len(arch.stages)} stages, the space {len(space.stages)}",
        )
    stages = [
        StageSpec(
            width=s.width,
            depth=s.depth,
            stride=s.stride,
            expansion=s.expansion,
            kernel=s.kernel,
            attention=s.attention,
            hparams=dict(s.hparams),
            placement=s.placement,
        )
        for s in arch.stages
    ]
    return get_family(arch.backbone).build_model(
        stages,
        num_classes=classes,
        in_channels=space.input_shape[0],
        small_input=arch.small_input,
        stem_width=arch.stem_width,
        head_width=arch.head_width,
    )
