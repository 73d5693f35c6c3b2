"""``nas blocks [NAME] [--channels C] [--json]``: the attention blocks a search can choose from."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``blocks`` sub-command."""
    parser = subparsers.add_parser(
        "blocks",
        help="list the attention blocks and their hyperparameters",
        description="List the attention blocks (paper, hyperparameters with official default "
        "and search domain), or show one block in detail.",
    )
    parser.add_argument("name", nargs="?", help="show this block in detail")
    parser.add_argument(
        "--channels",
        type=int,
        metavar="C",
        help="with NAME: also show which domain values are valid for C channels",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_run)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "(" + ",".join(_fmt(v) for v in value) + ")"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _hparam_lines(spec: Any) -> list[str]:
    if not spec.hparams:
        return ["-"]
    return [
        f"{h.name}={_fmt(h.default)}  {{{', '.join(_fmt(v) for v in h.domain)}}}"
        for h in spec.hparams
    ]


def _short_paper(paper: str, width: int = 60) -> str:
    text = paper.split(" (arXiv")[0]
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _list_all(as_json: bool) -> str:
    from nas.blocks import get_spec, list_blocks

    specs = [get_spec(name) for name in list_blocks()]
    if as_json:
        return json.dumps([spec.to_dict() for spec in specs], indent=2)
    rows = [("BLOCK", "PAPER", "HYPERPARAMETERS: name=default  {search domain}")]
    for spec in specs:
        first, *rest = _hparam_lines(spec)
        rows.append((spec.name, _short_paper(spec.paper), first))
        rows += [("", "", line) for line in rest]
    footer = (
        "\n\n`nas blocks NAME [--channels C]` shows one block and the values valid for C "
        "channels;\nin Python: nas.blocks.create_block(name, channels, **hparams)."
    )
    return _table(rows) + footer


def _detail(name: str, channels: int | None, as_json: bool) -> str:
    from nas.blocks import get_spec

    spec = get_spec(name)
    valid: dict[str, list[Any]] | None = None
    if channels is not None:
        valid = {h.name: spec.valid_values(h.name, channels) for h in spec.hparams}
    if as_json:
        data = spec.to_dict()
        if valid is not None:
            data["channels"] = channels
            data["default_valid"] = spec.is_valid(channels)
            data["valid_values"] = {k: [_json(v) for v in vs] for k, vs in valid.items()}
        return json.dumps(data, indent=2)
    lines = [
        f"{spec.name}: {spec.summary}" if spec.summary else spec.name,
        f"paper:   {spec.paper}",
        f"class:   {spec.cls.__module__}.{spec.cls.__qualname__}",
        "conv:    "
        + (
            f"create_conv_block({spec.name!r}, in, out, stride) replaces a 3x3 conv"
            if spec.supports_conv
            else "no conv-replacing form"
        ),
    ]
    if not spec.hparams:
        lines.append("hyperparameters: none")
    else:
        rows = [("PARAM", "TYPE", "DEFAULT", "DOMAIN", "MEANING")]
        for h in spec.hparams:
            domain = ", ".join(_fmt(v) for v in h.domain)
            rows.append((h.name, h.type.__name__, _fmt(h.default), domain, h.doc))
        lines += ["", _table(rows)]
    if valid is not None:
        lines += ["", f"for channels={channels}:"]
        try:
            spec.validate(channels)
            lines.append("  the defaults are valid")
        except ValueError as exc:
            lines.append(f"  the defaults are invalid ({exc})")
        for param, values in valid.items():
            shown = ", ".join(_fmt(v) for v in values) or "none"
            lines.append(f"  {param}: {shown}")
        if spec.hparams and not spec.valid_combinations(channels):
            lines.append("  no combination of domain values is valid")
    return "\n".join(lines)


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _run(args: argparse.Namespace) -> int:
    if args.name is None:
        if args.channels is not None:
            print("error: --channels needs a block NAME", file=sys.stderr)
            return 2
        print(_list_all(args.json))
    else:
        print(_detail(args.name, args.channels, args.json))
    return 0
