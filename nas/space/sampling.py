"""Turning a space into architectures: Optuna define-by-run sampling, stored params, defaults.

Parameter names: ``stage{i}.width|depth|expansion|kernel`` (when searched),
``stage{i}.attention``, then ``stage{i}.{block}.{param}`` for the chosen block only. A
parameter with a single choice is not suggested (its value is fixed by the space).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nas.backbones.stage import supports_conv
from nas.space.arch import Arch, ArchStage
from nas.space.errors import SpaceError
from nas.space.space import SearchSpace, decode_value, encode_value

__all__ = ["arch_from_params", "default_arch", "suggest"]

Pick = Callable[[str, list[Any]], Any]
"""``pick(param_name, choices) -> chosen`` (choices already Optuna-encoded)."""


def _arch(space: SearchSpace, pick: Pick) -> Arch:
    stages = []
    for i, stage in enumerate(space.stages):

        def choose(name: str, values: tuple[Any, ...]) -> Any:
            if len(values) == 1:
                return values[0]
            encoded = [encode_value(v) for v in values]
            return decode_value(values, pick(name, encoded))

        structure = {
            field: choose(f"stage{i}.{field}", getattr(stage, field))
            for field in ("width", "depth", "expansion", "kernel")
        }
        block = choose(f"stage{i}.attention", stage.attention)
        hparams = {
            param: choose(f"stage{i}.{block}.{param}", values)
            for param, values in stage.hparams[block].items()
        }
        stages.append(_stage(space, stage.stride, block, hparams, structure))
    return _space_arch(space, stages)


def _space_arch(space: SearchSpace, stages: list[ArchStage]) -> Arch:
    """An :class:`Arch` of ``space`` with the given per-stage choices."""
    return Arch(
        backbone=space.backbone,
        stages=tuple(stages),
        small_input=space.small_input,
        stem_width=space.stem_width,
        head_width=space.head_width,
    )


def _stage(
    space: SearchSpace,
    stride: int,
    block: str,
    hparams: Mapping[str, Any],
    structure: Mapping[str, int],
) -> ArchStage:
    conv = space.placement == "conv" and block != "none" and supports_conv(block)
    return ArchStage(
        attention=block,
        hparams=hparams,
        stride=stride,
        placement="conv" if conv else "post",
        **structure,
    )


def suggest(trial: Any, space: SearchSpace) -> Arch:
    """Sample an architecture with an Optuna trial (define-by-run; ``FixedTrial`` works)."""
    return _arch(space, lambda name, choices: trial.suggest_categorical(name, choices))


def arch_from_params(space: SearchSpace, params: Mapping[str, Any]) -> Arch:
    """Rebuild the architecture from stored Optuna parameters (``trial.params``)."""

    def pick(name: str, choices: list[Any]) -> Any:
        if name not in params:
            raise SpaceError(space.source, name, "missing from the parameters")
        value = params[name]
        if value not in choices or isinstance(value, bool) != any(
            isinstance(c, bool) and c == value for c in choices
        ):
            raise SpaceError(space.source, name, f"{value!r} is not one of {choices}")
        return value

    return _arch(space, pick)


def _closest(default: Any, values: tuple[Any, ...]) -> Any:
    """``default`` if offered, else the nearest offered number (or the first value)."""
    if default in values:
        return default

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if number(default) and all(number(v) for v in values):
        return min(values, key=lambda v: abs(v - default))
    return values[0]


def default_arch(space: SearchSpace, attention: str = "none") -> Arch:
    """Every stage with ``attention`` at its official defaults (a default the stage does not
    offer becomes the nearest offered value); stages that do not offer ``attention`` take
    ``none`` (or their first block); searched structure takes its first listed value."""
    from nas.blocks import get_spec

    get_spec(attention)  # an unknown name fails here, listing the valid ones
    stages = []
    for stage in space.stages:
        if attention in stage.attention:
            block = attention
        elif "none" in stage.attention:
            block = "none"
        else:
            block = stage.attention[0]
        defaults = get_spec(block).defaults()
        hparams = {
            param: _closest(defaults[param], values)
            for param, values in stage.hparams[block].items()
        }
        structure = {f: getattr(stage, f)[0] for f in ("width", "depth", "expansion", "kernel")}
        stages.append(_stage(space, stage.stride, block, hparams, structure))
    return _space_arch(space, stages)
