"""``SearchSpace``: a checked space with every stage's resolved choices.

Built by :func:`nas.space.resolve.resolve_space`; the choices depend on the space alone, so
an Optuna parameter has the same choices in every trial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["SearchSpace", "StageChoices", "decode_value", "encode_value", "plain_value"]

Value = Any


def encode_value(value: Value) -> bool | int | float | str:
    """The Optuna choice for a hyperparameter value (a tuple becomes ``"3,5,7,9"``)."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return value


def decode_value(choices: Sequence[Value], encoded: Any) -> Value:
    """The value among ``choices`` whose encoding is ``encoded``; ``KeyError`` if none."""
    for value in choices:
        if encode_value(value) == encoded and type(encode_value(value)) is type(encoded):
            return value
    raise KeyError(encoded)


class StageChoices(BaseModel):
    """What one stage offers: structure choices, blocks, and each block's hyperparameters."""

    model_config = ConfigDict(frozen=True)

    stride: int
    width: tuple[int, ...]
    depth: tuple[int, ...]
    expansion: tuple[int, ...]
    kernel: tuple[int, ...]
    attention: tuple[str, ...]
    hparams: dict[str, dict[str, tuple[Any, ...]]]
    """``{block: {param: choices}}`` for every offered block (every parameter listed)."""
    resolution: tuple[int, int]
    """Spatial size of the stage's output for the space's input shape."""

    def size(self) -> int:
        """Distinct settings of this stage."""
        structure = len(self.width) * len(self.depth) * len(self.expansion) * len(self.kernel)
        blocks = sum(math.prod(len(c) for c in self.hparams[b].values()) for b in self.attention)
        return structure * blocks

    def to_dict(self) -> dict[str, Any]:
        def one_or_list(values: tuple[int, ...]) -> int | list[int]:
            return values[0] if len(values) == 1 else list(values)

        return {
            "width": one_or_list(self.width),
            "depth": one_or_list(self.depth),
            "stride": self.stride,
            "expansion": one_or_list(self.expansion),
            "kernel": one_or_list(self.kernel),
            "attention": list(self.attention),
            "hparams": {
                block: {p: [plain_value(v) for v in vs] for p, vs in params.items()}
                for block, params in self.hparams.items()
                if params
            },
        }


def plain_value(value: Any) -> Any:
    """JSON form of a hyperparameter value (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


class SearchSpace(BaseModel):
    """A checked search space; build it with :func:`nas.space.load_space` or ``parse_space``."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    backbone: str
    input_shape: tuple[int, int, int]
    num_classes: int | None
    small_input: bool
    placement: str
    stem_width: int
    head_width: int | None
    stages: tuple[StageChoices, ...]
    source: str = "<inline>"

    def size(self) -> int:
        """Number of distinct architectures (exact)."""
        return math.prod(s.size() for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """A space document (JSON/YAML-ready) that parses back to an equal space."""
        return {
            "name": self.name,
            "description": self.description,
            "backbone": self.backbone,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "small_input": self.small_input,
            "placement": self.placement,
            "stem_width": self.stem_width,
            "head_width": self.head_width,
            "stages": [s.to_dict() for s in self.stages],
        }

    def parameters(self) -> dict[str, list[bool | int | float | str]]:
        """Every Optuna parameter the space can suggest, with its choices, in order."""
        params: dict[str, list[bool | int | float | str]] = {}
        for i, stage in enumerate(self.stages):
            for name in ("width", "depth", "expansion", "kernel"):
                values = getattr(stage, name)
                if len(values) > 1:
                    params[f"stage{i}.{name}"] = list(values)
            if len(stage.attention) > 1:
                params[f"stage{i}.attention"] = list(stage.attention)
            for block in stage.attention:
                for param, values in stage.hparams[block].items():
                    if len(values) > 1:
                        params[f"stage{i}.{block}.{param}"] = [encode_value(v) for v in values]
        return params
