"""Block registry: declarations of every attention block and its hyperparameters.

Each block module declares a :class:`BlockSpec` next to its class and calls :func:`register`.
The declaration is what search spaces read: every hyperparameter's official default, its
search domain and the block's validity rule against the channel count, so a space never
offers an invalid combination and a wrong one fails at construction with
:class:`BlockConfigError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.errors import NasError, NotFoundError

__all__ = [
    "BlockConfigError",
    "BlockSpec",
    "HParam",
    "UnknownBlockError",
    "create_block",
    "create_conv_block",
    "get_spec",
    "list_blocks",
    "register",
]


class BlockConfigError(NasError, ValueError):
    """A block was configured with a value that breaks one of its rules.

    The message reads ``"<block>: <param>=<value> <rule>"``, e.g.
    ``"sa: channels=96 must be divisible by 2*groups=128"``.
    """

    def __init__(self, block: str, param: str, value: Any, rule: str) -> None:
        self.block, self.param, self.value, self.rule = block, param, value, rule
        super().__init__(f"{block}: {param}={value!r} {rule}")


class UnknownBlockError(NotFoundError, BlockConfigError):
    """No block of that name is registered; the message lists the valid names."""

    def __init__(self, name: str) -> None:
        valid = ", ".join(list_blocks())
        NasError.__init__(self, f"unknown block {name!r}; valid blocks: {valid}")
        self.block, self.param, self.value, self.rule = name, "name", name, f"one of {valid}"


@dataclass(frozen=True)
class HParam:
    """One hyperparameter of a block.

    ``domain`` is the set of values a search offers (before the channel rule filters it);
    ``check`` validates a single value on its own (type, sign, oddness) and returns the
    broken rule as text, or ``None`` when the value is fine.
    """

    name: str
    type: type
    default: Any
    domain: tuple[Any, ...]
    doc: str = ""
    check: Callable[[Any], str | None] | None = None


ChannelRule = Callable[[int, Mapping[str, Any]], "tuple[str, Any, str] | None"]
"""``rule(channels, hparams)`` returns ``(param, value, broken_rule)`` or ``None``."""

ConvRule = Callable[[int, int, int, Mapping[str, Any]], "tuple[str, Any, str] | None"]
"""``conv_rule(in_channels, out_channels, stride, hparams)``: extra rules of the conv form."""


@dataclass(frozen=True)
class BlockSpec:
    """Declaration of a block: its class, paper, hyperparameters and channel rule."""

    name: str
    cls: type
    paper: str
    hparams: tuple[HParam, ...] = ()
    rule: ChannelRule | None = None
    conv_cls: type | None = None
    """A variant that replaces a convolution (``in, out, stride``), e.g. PSA and SK."""
    summary: str = ""
    conv_rule: ConvRule | None = None
    """Rules the conv form adds (on ``in_channels``/``stride``) to ``rule`` on ``out_channels``."""
    _by_name: dict[str, HParam] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {h.name: h for h in self.hparams})

    @property
    def supports_conv(self) -> bool:
        return self.conv_cls is not None

    def hparam(self, name: str) -> HParam:
        """The declaration of hyperparameter ``name``; unknown names list the known ones."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name) or "none"
            raise BlockConfigError(
                self.name, name, None, f"is not a parameter (known: {known})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (tuples become lists): for the CLI and the service."""

        def plain(value: Any) -> Any:
            return list(value) if isinstance(value, tuple) else value

        return {
            "name": self.name,
            "paper": self.paper,
            "summary": self.summary,
            "supports_conv": self.supports_conv,
            "hparams": [
                {
                    "name": h.name,
                    "type": h.type.__name__,
                    "default": plain(h.default),
                    "domain": [plain(v) for v in h.domain],
                    "doc": h.doc,
                }
                for h in self.hparams
            ],
        }

    def defaults(self) -> dict[str, Any]:
        """The official default hyperparameters."""
        return {h.name: h.default for h in self.hparams}

    def validate(self, channels: int, **hparams: Any) -> dict[str, Any]:
        """Complete ``hparams`` with defaults and check every rule; returns the full set."""
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise BlockConfigError(self.name, "channels", channels, "must be a positive integer")
        unknown = sorted(set(hparams) - set(self._by_name))
        if unknown:
            known = ", ".join(self._by_name) or "none"
            raise BlockConfigError(
                self.name, unknown[0], hparams[unknown[0]], f"is not a parameter (known: {known})"
            )
        resolved = self.defaults() | hparams
        for hp in self.hparams:
            value = resolved[hp.name]
            if hp.check is not None:
                broken = hp.check(value)
                if broken:
                    raise BlockConfigError(self.name, hp.name, value, broken)
            if hp.type is tuple and isinstance(value, list):
                resolved[hp.name] = tuple(value)  # JSON arrays come back as lists
        if self.rule is not None:
            failure = self.rule(channels, resolved)
            if failure is not None:
                raise BlockConfigError(self.name, *failure)
        return resolved

    def validate_conv(
        self, in_channels: int, out_channels: int, stride: int = 1, **hparams: Any
    ) -> dict[str, Any]:
        """Like :meth:`validate` for the conv form (``out_channels`` takes ``channels``' rule)."""
        if self.conv_cls is None:
            with_conv = ", ".join(n for n in list_blocks() if _REGISTRY[n].supports_conv)
            raise BlockConfigError(
                self.name,
                "placement",
                "conv",
                f"is not supported (blocks that replace a conv: {with_conv})",
            )
        for param, value in (("in_channels", in_channels), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BlockConfigError(self.name, param, value, "must be a positive integer")
        resolved = self.validate(out_channels, **hparams)
        if self.conv_rule is not None:
            failure = self.conv_rule(in_channels, out_channels, stride, resolved)
            if failure is not None:
                raise BlockConfigError(self.name, *failure)
        return resolved

    def is_valid_conv(
        self, in_channels: int, out_channels: int, stride: int = 1, **hparams: Any
    ) -> bool:
        try:
            self.validate_conv(in_channels, out_channels, stride, **hparams)
        except BlockConfigError:
            return False
        return True

    def is_valid(self, channels: int, **hparams: Any) -> bool:
        try:
            self.validate(channels, **hparams)
        except BlockConfigError:
            return False
        return True

    def valid_values(self, param: str, channels: int, **fixed: Any) -> list[Any]:
        """Domain values of ``param`` that some completion makes valid for ``channels``."""
        return [
            value
            for value in self.hparam(param).domain
            if any(
                combo[param] == value
                for combo in self.valid_combinations(channels, **(fixed | {param: value}))
            )
        ]

    def valid_combinations(self, channels: int, **fixed: Any) -> list[dict[str, Any]]:
        """Every combination of domain values (``fixed`` pinned) valid for ``channels``."""
        names = [h.name for h in self.hparams]
        domains = [(fixed[h.name],) if h.name in fixed else h.domain for h in self.hparams]
        combos = (dict(zip(names, values, strict=True)) for values in itertools.product(*domains))
        return [c for c in combos if self.is_valid(channels, **c)]


_REGISTRY: dict[str, BlockSpec] = {}


def register(spec: BlockSpec) -> BlockSpec:
    """Add a block declaration to the registry (module import time)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"block {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_blocks() -> list[str]:
    """Names of every registered block, ``none`` first, then alphabetical."""
    return sorted(_REGISTRY, key=lambda n: (n != "none", n))


def get_spec(name: str) -> BlockSpec:
    """The declaration of block ``name``; unknown names raise :class:`UnknownBlockError`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownBlockError(name) from None


def create_block(name: str, channels: int, **hparams: Any) -> Any:
    """Build attention block ``name`` for ``channels``: an ``nn.Module`` (B,C,H,W) -> (B,C,H,W)."""
    spec = get_spec(name)
    resolved = spec.validate(channels, **hparams)
    return spec.cls(channels, **resolved)


def create_conv_block(
    name: str, in_channels: int, out_channels: int, stride: int = 1, **hparams: Any
) -> Any:
    """Build the conv-replacing form of ``name`` (PSA, SK): (B,in,H,W) -> (B,out,H/s,W/s)."""
    spec = get_spec(name)
    resolved = spec.validate_conv(in_channels, out_channels, stride, **hparams)
    return spec.conv_cls(in_channels, out_channels, stride=stride, **resolved)
