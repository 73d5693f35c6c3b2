"""Stage settings shared by the backbone families, and the attention factory they call.

A backbone is built stage by stage: each :class:`StageSpec` says how many blocks the stage
has, their width, stride, expansion and kernel, and which attention block (with which
hyperparameters) every block of the stage carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

__all__ = [
    "PLACEMENTS",
    "Site",
    "StageSpec",
    "attention_module",
    "backbone_modules",
    "conv_module",
    "per_stage",
    "site_error",
    "site_is_valid",
    "supports_conv",
    "with_attention",
]

Site = tuple[int, int, int, bool]
"""Where a block sits: ``(in_channels, out_channels, stride, replaces_conv)``; an attention
block after a BN is ``(C, C, 1, False)``."""

PLACEMENTS = ("post", "conv")
"""``post``: attention after the block's last BN; ``conv``: blocks that can replace a
convolution (PSA, SK) take the place of the ResNet bottleneck's 3x3 conv, others stay ``post``."""


@dataclass(frozen=True)
class StageSpec:
    """One stage of a backbone.

    ``width`` is the output channel count of a MobileNetV2 stage, or the bottleneck width
    (``planes``) of a ResNet stage whose output is ``width * expansion``. ``kernel`` is the
    depthwise kernel (MobileNetV2) or the middle conv's kernel (ResNet).
    """

    width: int
    depth: int
    stride: int
    expansion: int
    kernel: int = 3
    attention: str = "none"
    hparams: Mapping[str, Any] = field(default_factory=dict)
    placement: str = "post"


def per_stage(value: Any, count: int, what: str) -> list[Any]:
    """One value for every stage, or a list with exactly one entry per stage."""
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise ValueError(
                f"{what}: expected one value or a list of {count} (one per stage), "
                f"got {len(value)}"
            )
        return list(value)
    return [value] * count


def with_attention(
    stages: Sequence[StageSpec], attention: Any, hparams: Any, placement: Any = "post"
) -> list[StageSpec]:
    """``stages`` with the attention (one value or one per stage) set on every stage."""
    names = per_stage(attention, len(stages), "attention")
    hps = per_stage(hparams, len(stages), "hparams")
    places = per_stage(placement, len(stages), "placement")
    out = []
    for stage, name, hp, place in zip(stages, names, hps, places, strict=True):
        if place not in PLACEMENTS:
            raise ValueError(f"placement={place!r} must be one of {', '.join(PLACEMENTS)}")
        out.append(replace(stage, attention=name, hparams=dict(hp or {}), placement=place))
    return out


def attention_module(name: str, channels: int, hparams: Mapping[str, Any]) -> nn.Module | None:
    """The attention block ``name`` for ``channels``, or ``None`` for ``none`` (no module).

    Leaving ``none`` out keeps the module tree (and the state dict) of the reference networks.
    """
    if name == "none" and not hparams:
        return None
    from nas.blocks import create_block

    return _tag(create_block(name, channels, **dict(hparams)))


def conv_module(
    name: str, in_channels: int, out_channels: int, stride: int, hparams: Mapping[str, Any]
) -> nn.Module:
    """The convolution-replacing form of ``name`` (PSA, SK)."""
    from nas.blocks import create_conv_block

    return _tag(create_conv_block(name, in_channels, out_channels, stride=stride, **dict(hparams)))


def _tag(module: nn.Module) -> nn.Module:
    module._nas_block = True  # type: ignore[assignment]  # initialised by its own code
    return module


def init_generator() -> torch.Generator:
    """A generator for a backbone's own weights, seeded by one draw of torch's global RNG.

    Call it first in a backbone's constructor: the backbone's layers then start from the same
    weights whatever attention blocks the architecture holds (their initialisation draws from
    the global RNG in between), so two architectures trained with the same seed differ only
    by their blocks (common random numbers), and their accuracies compare with less noise.
    """
    draw = torch.randint(0, 2**62, (), device="cpu")  # also under a meta-device context
    return torch.Generator().manual_seed(int(draw.item()))


def backbone_modules(root: nn.Module) -> list[nn.Module]:
    """Modules of ``root`` outside any attention block (those keep their own init)."""
    found: list[nn.Module] = []
    stack = [root]
    while stack:
        module = stack.pop()
        if getattr(module, "_nas_block", False):
            continue
        found.append(module)
        stack.extend(module.children())
    return found


def supports_conv(name: str) -> bool:
    """Whether block ``name`` can replace a convolution."""
    from nas.blocks import get_spec

    return get_spec(name).supports_conv


def site_is_valid(name: str, site: Site, hparams: Mapping[str, Any]) -> bool:
    """Whether block ``name`` with ``hparams`` can be built at ``site``."""
    from nas.blocks import get_spec

    spec = get_spec(name)
    in_channels, out_channels, stride, is_conv = site
    if is_conv:
        return spec.is_valid_conv(in_channels, out_channels, stride, **hparams)
    return spec.is_valid(out_channels, **hparams)


def site_error(name: str, site: Site, hparams: Mapping[str, Any]) -> str | None:
    """Why block ``name`` with ``hparams`` cannot be built at ``site`` (``None``: it can)."""
    from nas.blocks import BlockConfigError, get_spec

    spec = get_spec(name)
    in_channels, out_channels, stride, is_conv = site
    try:
        if is_conv:
            spec.validate_conv(in_channels, out_channels, stride, **hparams)
        else:
            spec.validate(out_channels, **hparams)
    except BlockConfigError as exc:
        return str(exc)
    return None
