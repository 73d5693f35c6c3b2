"""``Arch``: one architecture of a search space, with a stable short id.

An architecture lists, per stage, the attention block and its full hyperparameters plus the
stage's structure (width, depth, stride, expansion, kernel, placement), and the backbone-level
settings (family, stem and head widths, small-input stem). It is a complete description of
the network, so two architectures with the same id build the same network. The id is a hash
of the canonical JSON (sorted keys, no spaces), identical in every process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.space.errors import SpaceError

__all__ = ["Arch", "ArchStage"]

_ABBREVIATIONS = {
    "reduction": "r",
    "k_size": "k",
    "kernel_size": "k",
    "kernels": "k",
    "groups": "g",
    "rate": "r",
    "min_dim": "L",
    "recurrence": "rec",
    "subsample": "sub",
    "fusion": "",
}


def _plain(value: Any) -> Any:
    """JSON form of a hyperparameter value (tuples become lists)."""
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


def _frozen(value: Any) -> Any:
    """In-memory form of a hyperparameter value (lists become tuples)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, tuple | list) else value


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return "-".join(_short(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class ArchStage:
    """One stage of an architecture."""

    attention: str
    hparams: Mapping[str, Any] = field(default_factory=dict)
    width: int = 0
    depth: int = 1
    stride: int = 1
    expansion: int = 1
    kernel: int = 3
    placement: str = "post"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "hparams", {k: _frozen(v) for k, v in sorted(dict(self.hparams).items())}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "attention": self.attention,
            "hparams": {k: _plain(v) for k, v in self.hparams.items()},
            "width": self.width,
            "depth": self.depth,
            "stride": self.stride,
            "expansion": self.expansion,
            "kernel": self.kernel,
            "placement": self.placement,
        }

    def describe(self, structure: bool = False) -> str:
        """``se(r16)``, ``none``, ``psa(g1-4-8-16,k3-5-7-9,r16)``; with ``structure`` the
        stage's width, depth, expansion and kernel follow: ``se(r16)[w24d2e6k3]``."""
        text = self.attention
        if self.hparams:
            parts = [f"{_ABBREVIATIONS.get(k, k)}{_short(v)}" for k, v in self.hparams.items()]
            text += f"({','.join(parts)})"
        if structure:
            text += f"[w{self.width}d{self.depth}e{self.expansion}k{self.kernel}]"
        return text


_STAGE_INTS = ("width", "depth", "stride", "expansion", "kernel")


@dataclass(frozen=True, eq=False)
class Arch:
    """An architecture: ``backbone``, per-stage ``stages`` and the stem/head settings."""

    backbone: str
    stages: tuple[ArchStage, ...]
    small_input: bool = False
    stem_width: int | None = None
    head_width: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "small_input": self.small_input,
            "stem_width": self.stem_width,
            "head_width": self.head_width,
            "stages": [s.to_dict() for s in self.stages],
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace (the id hashes exactly this)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def id(self) -> str:
        """Stable 12-character id: the start of the SHA-256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def describe(self, structure: bool = False) -> str:
        """Compact readable form: the stages' attention, e.g. ``se(r16)|none|ca(r32)``
        (``structure=True`` adds each stage's width, depth, expansion and kernel)."""
        return "|".join(s.describe(structure) for s in self.stages)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Arch) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"Arch({self.id}: {self.backbone} {self.describe()})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Arch:
        """Rebuild from :meth:`to_dict`; a malformed dict raises :class:`SpaceError`."""
        src = "<arch>"
        if not isinstance(data, Mapping):
            raise SpaceError(src, "", f"expected an object, got {type(data).__name__}")
        known = {"backbone", "small_input", "stem_width", "head_width", "stages"}
        extra = sorted(set(data) - known)
        if extra:
            raise SpaceError(src, extra[0], "unknown field")
        backbone = data.get("backbone")
        if not isinstance(backbone, str):
            raise SpaceError(src, "backbone", "missing or not a string")
        stages = data.get("stages")
        if not isinstance(stages, list | tuple) or not stages:
            raise SpaceError(src, "stages", "missing or not a non-empty list")
        if not isinstance(data.get("small_input", False), bool):
            raise SpaceError(
                src, "small_input", f"must be true or false, got {data['small_input']!r}"
            )
        for name in ("stem_width", "head_width"):
            value = data.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise SpaceError(src, name, f"must be an integer or null, got {value!r}")
        parsed = []
        for i, stage in enumerate(stages):
            path = f"stages[{i}]"
            if not isinstance(stage, Mapping):
                raise SpaceError(src, path, "expected an object")
            extra = sorted(set(stage) - {"attention", "hparams", "placement", *_STAGE_INTS})
            if extra:
                raise SpaceError(src, f"{path}.{extra[0]}", "unknown field")
            if not isinstance(stage.get("attention"), str):
                raise SpaceError(src, f"{path}.attention", "missing or not a string")
            hparams = stage.get("hparams", {})
            if not isinstance(hparams, Mapping):
                raise SpaceError(src, f"{path}.hparams", "must be an object")
            ints = {}
            for name in _STAGE_INTS:
                value = stage.get(name)
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise SpaceError(
                        src, f"{path}.{name}", f"must be a positive integer, got {value!r}"
                    )
                ints[name] = value
            placement = stage.get("placement", "post")
            if placement not in ("post", "conv"):
                raise SpaceError(src, f"{path}.placement", "must be 'post' or 'conv'")
            parsed.append(
                ArchStage(
                    attention=stage["attention"], hparams=hparams, placement=placement, **ints
                )
            )
        return cls(
            backbone=backbone,
            stages=tuple(parsed),
            small_input=data.get("small_input", False),
            stem_width=data.get("stem_width"),
            head_width=data.get("head_width"),
        )

    @classmethod
    def from_json(cls, text: str) -> Arch:
        """Rebuild from :meth:`to_json` (or any JSON of :meth:`to_dict`)."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise SpaceError("<arch>", "", f"not valid JSON: {exc}") from None
        return cls.from_dict(data)
