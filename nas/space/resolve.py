"""Checking a space document against the backbone and the block registry.

Checking resolves, for every stage, the blocks it offers and each block's hyperparameter
choices. The choices depend on the space alone (never on what a trial picked earlier), so an
Optuna parameter has the same choices in every trial: a block or value is offered only if it
is valid for every channel count the stage can have, and a block's hyperparameter choices
form a box (every combination of the offered values is valid).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from nas.backbones import Family, StageSpec, get_family
from nas.backbones.stage import Site, site_error, site_is_valid
from nas.blocks import UnknownBlockError, get_spec, list_blocks
from nas.space.errors import SpaceError
from nas.space.schema import SpaceDocument, StageDocument
from nas.space.space import SearchSpace, StageChoices, plain_value

__all__ = ["MAX_BLOCK_COMBINATIONS", "MAX_STAGE_SHAPES", "resolve_space", "validate_document"]


MAX_BLOCK_COMBINATIONS = 10_000
"""Most hyperparameter combinations one block may offer in one stage (checked one by one)."""
MAX_STAGE_SHAPES = 4_096
"""Most (input width, width, expansion, depth) combinations of one stage."""

_UNION_HINTS = {
    "width": "must be a positive integer or a non-empty list of positive integers",
    "depth": "must be a positive integer or a non-empty list of positive integers",
    "expansion": "must be a positive integer or a non-empty list of positive integers",
    "kernel": "must be an odd positive integer or a non-empty list of them",
    "attention": "must be 'all' or a non-empty list of block names",
}


def _is_branch(part: int | str) -> bool:
    """Pydantic's union-branch markers in an error location (``list[constrained-int]``)."""
    return isinstance(part, str) and (
        any(ch in part for ch in "[-'") or part in ("int", "str", "bool", "float", "none")
    )


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _is_branch(part):
            path += f".{part}" if path else str(part)
    return path


def validate_document(data: Any, source: str) -> SpaceDocument:
    """Validate the raw document; errors become :class:`SpaceError` with the field path."""
    if not isinstance(data, Mapping):
        raise SpaceError(
            source, "<document>", f"a space must be a mapping, got {type(data).__name__}"
        )
    try:
        return SpaceDocument.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
    # Report the first field in error; a union reports one error per branch: prefer an error
    # inside a list element, else say what the field accepts.
    field = _field_path(errors[0]["loc"])
    same = [e for e in errors if _field_path(e["loc"]).startswith(field)]
    deepest = max(same, key=lambda e: len(_field_path(e["loc"])))
    path = _field_path(deepest["loc"])
    if deepest["type"] == "missing":
        reason = "required field is missing"
    elif deepest["type"] == "extra_forbidden":
        reason = "unknown field"
    elif path == field and len(same) > 1:
        last = [p for p in deepest["loc"] if not _is_branch(p) and not isinstance(p, int)]
        hint = _UNION_HINTS.get(str(last[-1]) if last else "")
        reason = hint or " or ".join(dict.fromkeys(e["msg"] for e in same))
    else:
        reason = deepest["msg"]
    reason = reason.removeprefix("Value error, ")
    if deepest["type"] != "missing":
        reason += f" (got {_short(deepest.get('input'))})"
    raise SpaceError(source, path, reason)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_tuple(value: int | list[int] | None, default: int) -> tuple[int, ...]:
    if value is None:
        return (default,)
    return tuple(value) if isinstance(value, list) else (value,)


def _box(
    is_valid: Callable[[dict[str, Any]], bool],
    names: list[str],
    domains: list[tuple[Any, ...]],
    defaults: Sequence[Any],
) -> list[tuple[Any, ...]] | None:
    """A box of choices (one list per parameter) whose every combination is valid.

    It starts from the valid combination closest to the defaults and adds values in domain
    order whenever the box stays valid, so independent rules give every valid value and a
    joint rule (PSA: one group per kernel) keeps the values that go with the defaults.
    ``None`` when no combination is valid.
    """
    combos = list(itertools.product(*domains))
    combos.sort(key=lambda c: sum(v != d for v, d in zip(c, defaults, strict=True)))
    anchor = next((c for c in combos if is_valid(dict(zip(names, c, strict=True)))), None)
    if anchor is None:
        return None
    values = [[v] for v in anchor]
    for j, dom in enumerate(domains):
        for v in dom:
            if v in values[j]:
                continue
            others = [vs for k, vs in enumerate(values) if k != j]
            if all(
                is_valid(dict(zip(names, (*c[:j], v, *c[j:]), strict=True)))
                for c in itertools.product(*others)
            ):
                values[j].append(v)
    # Keep the domain order of the values.
    return [tuple(v for v in dom if v in values[j]) for j, dom in enumerate(domains)]


def _normalise(value: Any) -> Any:
    """A YAML value as a block takes it: lists become tuples (hashable, as PSA expects)."""
    if isinstance(value, list | tuple):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, dict):
        raise TypeError("a mapping is not a hyperparameter value")
    return value


def _check_names(source: str, names: Any, path: str) -> None:
    """Every listed block must exist (``all`` and ``None`` list none)."""
    if names is None or names == "all":
        return
    for j, name in enumerate(names):
        try:
            get_spec(name)
        except UnknownBlockError as exc:
            raise SpaceError(source, f"{path}[{j}]", str(exc)) from None


def resolve_space(data: Any, source: str, default_name: str = "inline") -> SearchSpace:
    """Check a raw space document and resolve every stage's choices."""
    doc = validate_document(data, source)
    try:
        family = get_family(doc.backbone)
    except KeyError as exc:
        raise SpaceError(source, "backbone", str(exc.args[0])) from None
    if doc.placement not in family.placements:
        raise SpaceError(
            source,
            "placement",
            f"{doc.placement!r} is not supported by {family.name} "
            f"(supported: {', '.join(family.placements)})",
        )
    if family.head_width is None and doc.head_width is not None:
        raise SpaceError(source, "head_width", f"{family.name} has no head conv")
    stem_width = doc.stem_width or family.stem_width
    head_width = (doc.head_width or family.head_width) if family.head_width else None

    _check_names(source, doc.attention, "attention")
    prev_outs = {stem_width}
    size = [doc.input_shape[1], doc.input_shape[2]]
    stride = family.stem_stride(doc.small_input)
    size = [math.ceil(s / stride) for s in size]
    stages = []
    for i, st in enumerate(doc.stages):
        stages.append(_resolve_stage(i, st, doc, family, prev_outs, source, size))
        prev_outs = {
            family.out_channels(StageSpec(width=w, depth=1, stride=1, expansion=e))
            for w in stages[-1].width
            for e in stages[-1].expansion
        }
        size = list(stages[-1].resolution)
    return SearchSpace(
        name=doc.name or default_name,
        description=doc.description,
        backbone=doc.backbone,
        input_shape=tuple(doc.input_shape),
        num_classes=doc.num_classes,
        small_input=doc.small_input,
        placement=doc.placement,
        stem_width=stem_width,
        head_width=head_width,
        stages=tuple(stages),
        source=source,
    )


def _resolve_stage(
    i: int,
    st: StageDocument,
    doc: SpaceDocument,
    family: Family,
    prev_outs: set[int],
    source: str,
    size: list[int],
) -> StageChoices:
    path = f"stages[{i}]"
    widths = _as_tuple(st.width, 0)
    depths = _as_tuple(st.depth, 1)
    expansions = _as_tuple(st.expansion, family.default_expansion)
    kernels = _as_tuple(st.kernel, 3)
    attention = st.attention if st.attention is not None else doc.attention
    _check_names(source, st.attention, f"{path}.attention")
    explicit = attention != "all"
    candidates = list(attention) if explicit else list_blocks()
    # Narrowed domains: the stage's own override the space-wide ones, parameter by parameter.
    narrowed: dict[str, dict[str, tuple[str, list[Any]]]] = {}
    for where, domains in (("hparams", doc.hparams), (f"{path}.hparams", st.hparams or {})):
        for block, params in domains.items():
            try:
                spec = get_spec(block)
            except Exception as exc:
                raise SpaceError(source, f"{where}.{block}", str(exc)) from None
            if where != "hparams" and block not in candidates:
                raise SpaceError(
                    source, f"{where}.{block}", f"{block} is not among this stage's attention"
                )
            known = {h.name: h for h in spec.hparams}
            for param, values in params.items():
                if param not in known:
                    raise SpaceError(
                        source,
                        f"{where}.{block}.{param}",
                        f"not a parameter of {block} (known: {', '.join(known) or 'none'})",
                    )
                hp = known[param]
                try:
                    norm = [_normalise(v) for v in values]
                except TypeError as exc:
                    raise SpaceError(source, f"{where}.{block}.{param}", str(exc)) from None
                if len(set(norm)) != len(norm):
                    raise SpaceError(
                        source, f"{where}.{block}.{param}", "lists the same value twice"
                    )
                for v in norm:
                    broken = hp.check(v) if hp.check else None
                    if broken:
                        raise SpaceError(
                            source, f"{where}.{block}.{param}", f"value {v!r} {broken}"
                        )
                narrowed.setdefault(block, {})[param] = (f"{where}.{block}.{param}", norm)

    shapes = len(prev_outs) * len(widths) * len(expansions) * len(depths)
    if shapes > MAX_STAGE_SHAPES:
        raise SpaceError(
            source,
            path,
            f"{shapes} combinations of input width, width, expansion and depth; "
            f"at most {MAX_STAGE_SHAPES}: search fewer values",
        )
    placement = doc.placement
    offered: list[str] = []
    hparams: dict[str, dict[str, tuple[Any, ...]]] = {}
    for block in candidates:
        spec = get_spec(block)
        sites: set[Site] = set()
        for prev, w, e, d in itertools.product(prev_outs, widths, expansions, depths):
            stage = StageSpec(
                width=w,
                depth=d,
                stride=st.stride,
                expansion=e,
                attention=block,
                placement=placement,
            )
            sites |= family.attention_sites(prev, stage)
        if not sites:  # no attention at this stage (MobileNetV2 expansion-1 blocks)
            if block == "none":
                offered.append(block)
                hparams[block] = {}
            elif explicit:
                raise SpaceError(
                    source,
                    f"{path}.attention",
                    f"{block}: blocks with expansion 1 carry no attention; offer only none",
                )
            continue
        names = [h.name for h in spec.hparams]
        mine = narrowed.get(block, {})
        domains = [tuple(mine[h.name][1]) if h.name in mine else h.domain for h in spec.hparams]
        combinations = math.prod(len(d) for d in domains)
        if combinations > MAX_BLOCK_COMBINATIONS:
            raise SpaceError(
                source,
                f"{path}.hparams.{block}",
                f"{combinations} hyperparameter combinations; at most "
                f"{MAX_BLOCK_COMBINATIONS}: narrow the domains",
            )

        def valid(hp: dict[str, Any], block: str = block, sites: set[Site] = sites) -> bool:
            return all(site_is_valid(block, s, hp) for s in sites)

        box = _box(valid, names, domains, [spec.defaults()[n] for n in names])
        if box is None:
            if explicit:
                reason = _why(block, sites, names, domains)
                raise SpaceError(
                    source, f"{path}.attention", f"{block} is valid in no setting here: {reason}"
                )
            continue
        for j, name in enumerate(names):
            if name in mine:
                dropped = [v for v in domains[j] if v not in box[j]]
                if dropped:
                    bad = dropped[0]
                    fixed = {n: box[k][0] for k, n in enumerate(names) if k != j}
                    reason = _why(block, sites, [name], [(bad,)], fixed)
                    alone = [d if k != j else (bad,) for k, d in enumerate(domains)]
                    if _box(valid, names, alone, [d[0] for d in alone]) is None:
                        reason = f"value {plain_value(bad)!r} is invalid for this stage: {reason}"
                    else:
                        reason = (
                            f"value {plain_value(bad)!r} cannot be offered together with the "
                            f"stage's other choices ({reason}); narrow the domains"
                        )
                    raise SpaceError(source, mine[name][0], reason)
        offered.append(block)
        hparams[block] = {name: box[j] for j, name in enumerate(names)}
    if not offered:
        raise SpaceError(source, f"{path}.attention", "no block is valid at this stage")
    resolution = (math.ceil(size[0] / st.stride), math.ceil(size[1] / st.stride))
    return StageChoices(
        stride=st.stride,
        width=widths,
        depth=depths,
        expansion=expansions,
        kernel=kernels,
        attention=tuple(offered),
        hparams=hparams,
        resolution=resolution,
    )


def _why(
    block: str,
    sites: set[Site],
    names: list[str],
    domains: list[tuple[Any, ...]],
    fixed: Mapping[str, Any] | None = None,
) -> str:
    """The first rule a combination of ``domains`` breaks at one of ``sites``."""
    for combo in itertools.product(*domains):
        hp = dict(fixed or {}) | dict(zip(names, combo, strict=True))
        for site in sorted(sites):
            error = site_error(block, site, hp)
            if error:
                return error
    return "no combination of its hyperparameters is valid at every channel count of the stage"
