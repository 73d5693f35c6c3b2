"""``nas spaces [--json]`` and ``nas spaces show NAME|PATH [--json]``: the search spaces."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``spaces`` sub-command (and its ``show`` action)."""
    parser = subparsers.add_parser(
        "spaces",
        help="list the search spaces, or show one",
        description="List the shipped search spaces (backbone, input, stages, number of "
        "architectures), or show one space's stages and choices.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_list)
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="show one space: stages, attention choices, hyperparameter domains, size",
        description="Show a search space by name (see `nas spaces`) or YAML file path.",
    )
    show.add_argument("name", metavar="NAME|PATH", help="space name or path to a YAML file")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(handler=_show)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "(" + ",".join(_fmt(v) for v in value) + ")"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _choices(values: tuple[Any, ...]) -> str:
    return _fmt(values[0]) if len(values) == 1 else "{" + ",".join(_fmt(v) for v in values) + "}"


def _size(n: int) -> str:
    return f"{n:,}" if n < 10**7 else f"{n:.2e}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    )


def _list(args: argparse.Namespace) -> int:
    from nas.space import SpaceError, list_spaces, load_space

    rows = [("NAME", "BACKBONE", "INPUT", "STAGES", "SIZE", "DESCRIPTION")]
    data, failed = [], []
    for name in list_spaces():
        try:
            space = load_space(name)
        except SpaceError as exc:
            failed.append(str(exc))
            rows.append((name, "?", "?", "?", "?", "invalid (see below)"))
            continue
        shape = "x".join(str(d) for d in space.input_shape)
        rows.append(
            (
                name,
                space.backbone,
                shape,
                str(len(space.stages)),
                _size(space.size()),
                space.description,
            )
        )
        data.append(
            {
                "name": name,
                "backbone": space.backbone,
                "input_shape": list(space.input_shape),
                "stages": len(space.stages),
                "size": space.size(),
                "description": space.description,
                "source": space.source,
            }
        )
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(_table(rows))
        print("\n`nas spaces show NAME` shows a space's stages and choices.")
    for message in failed:
        print(f"error: {message}", file=sys.stderr)
    return 2 if failed else 0


def _show(args: argparse.Namespace) -> int:
    from nas.space import load_space

    space = load_space(args.name)
    if args.json:
        print(json.dumps(space.to_dict() | {"source": space.source, "size": space.size()}))
        return 0
    classes = space.num_classes if space.num_classes is not None else "from the dataset"
    lines = [
        f"{space.name}: {space.description}" if space.description else space.name,
        f"source:      {space.source}",
        f"backbone:    {space.backbone} (stem {space.stem_width}"
        + (f", head {space.head_width}" if space.head_width else "")
        + (", small-input stem" if space.small_input else "")
        + (", PSA/SK replace the 3x3 conv" if space.placement == "conv" else "")
        + ")",
        f"input:       {'x'.join(str(d) for d in space.input_shape)}, classes: {classes}",
        f"size:        {space.size():,} architectures, "
        f"{len(space.parameters())} Optuna parameters",
        "",
    ]
    rows = [("STAGE", "OUT", "STRIDE", "WIDTH", "DEPTH", "EXPANSION", "KERNEL", "BLOCKS")]
    for i, stage in enumerate(space.stages):
        rows.append(
            (
                str(i),
                "x".join(str(r) for r in stage.resolution),
                str(stage.stride),
                _choices(stage.width),
                _choices(stage.depth),
                _choices(stage.expansion),
                _choices(stage.kernel),
                str(len(stage.attention)),
            )
        )
    lines.append(_table(rows))
    for i, stage in enumerate(space.stages):
        lines += ["", f"stage {i} attention ({stage.size():,} settings):"]
        for block in stage.attention:
            params = stage.hparams[block]
            text = "  ".join(f"{p}={_choices(v)}" for p, v in params.items()) or "-"
            lines.append(f"  {block:<9} {text}")
    print("\n".join(lines))
    return 0
