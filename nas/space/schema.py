"""The YAML schema of a search space (pydantic), before it is checked against the blocks.

A structural field (``width``, ``depth``, ``expansion``, ``kernel``) is one integer, or a list
of integers the search chooses from. ``attention`` is ``all`` (every block valid at the stage)
or a list of block names; ``hparams`` narrows a block's search domains::

    stages:
      - {width: 24, depth: 2, stride: 2, attention: [none, se, ca],
         hparams: {se: {reduction: [8, 16]}}}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Choice", "SpaceDocument", "StageDocument"]

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Choice = PositiveInt | Annotated[list[PositiveInt], Field(min_length=1)]
"""An integer, or the list of integers a search picks from."""
AttentionChoice = Literal["all"] | Annotated[list[str], Field(min_length=1)]
Domains = dict[str, dict[str, Annotated[list[Any], Field(min_length=1)]]]
"""``{block: {param: [values...]}}``; a tuple-valued parameter lists lists."""


def _unique(value: Any) -> Any:
    if isinstance(value, list) and len({repr(v) for v in value}) != len(value):
        raise ValueError("lists the same value twice")
    return value


class StageDocument(BaseModel):
    """One stage: structure, attention choices, narrowed hyperparameter domains."""

    model_config = ConfigDict(extra="forbid")

    width: Choice
    depth: Choice = 1
    stride: Literal[1, 2] = 1
    expansion: Choice | None = None
    kernel: Choice = 3
    attention: AttentionChoice | None = None
    hparams: Domains | None = None

    @field_validator("width", "depth", "expansion", "kernel", "attention")
    @classmethod
    def _no_duplicates(cls, value: Any) -> Any:
        return _unique(value)

    @field_validator("kernel")
    @classmethod
    def _odd_kernel(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if any(v % 2 == 0 for v in values):
            raise ValueError("kernel sizes must be odd")
        return value


class SpaceDocument(BaseModel):
    """A whole search space file."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    description: str = ""
    backbone: str
    input_shape: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)]
    num_classes: Annotated[int, Field(strict=True, ge=2)] | None = None
    small_input: bool = False
    placement: Literal["post", "conv"] = "post"
    stem_width: PositiveInt | None = None
    head_width: PositiveInt | None = None
    attention: AttentionChoice = "all"
    hparams: Domains = Field(default_factory=dict)
    stages: Annotated[list[StageDocument], Field(min_length=1)]

    @field_validator("attention")
    @classmethod
    def _no_duplicates(cls, value: Any) -> Any:
        return _unique(value)
