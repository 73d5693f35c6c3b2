"""``nas search``, ``nas searches``, ``nas pareto``, ``nas trials`` and ``nas export``.

Thin: parse, call :mod:`nas.search`, print. Heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from nas.commands._search_output import Reporter, describe, fmt_s, print_records, text_table
from nas.search.config import RESUMABLE, SearchConfig

__all__ = ["NOT_FLAGS", "register"]

NOT_FLAGS: frozenset[str] = frozenset()
"""``SearchConfig`` fields that are not ``nas search`` flags (none: every option is one)."""


def register(subparsers: Any) -> None:
    """Add the search sub-commands."""
    p = subparsers.add_parser(
        "search",
        help="run (or resume) an architecture search",
        description="Search a space with Ray Tune + Optuna, tracked in MLflow. Defaults: the "
        "mobile space, the embedded jittered-digits task, local Ray, SQLite and MLflow stores in "
        "$NAS_HOME (default ~/.nas). Ctrl-C stops cleanly; `--resume ID` continues.",
    )
    _add_option_flags(p)
    p.add_argument("--resume", metavar="ID", help="continue search ID to its budget")
    p.set_defaults(handler=_search)

    p = subparsers.add_parser("searches", help="list the searches in the Optuna storage")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite in $NAS_HOME)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=_searches)

    for name, what in (("pareto", "the Pareto front"), ("trials", "all trials")):
        p = subparsers.add_parser(name, help=f"show {what} of a search")
        p.add_argument("id", metavar="ID", help="search id (see `nas searches`)")
        p.add_argument("--format", choices=["table", "json", "csv"], default="table")
        p.add_argument("--storage", help="Optuna storage URL (default: SQLite in $NAS_HOME)")
        p.set_defaults(handler=_pareto if name == "pareto" else _trials)

    p = subparsers.add_parser(
        "export",
        help="export a trained trial (TorchScript, state dict or ONNX)",
        description="Write a complete trial's trained model. torchscript: torch.jit.load(PATH). "
        "state_dict: torch.load(PATH) gives state_dict, arch, space and num_classes. onnx (the "
        "[onnx] extra): opset 17, dynamic batch, checked and compared with PyTorch in ONNX "
        "Runtime.",
    )
    p.add_argument("id", metavar="ID", help="search id")
    p.add_argument("trial", metavar="TRIAL", type=int, help="trial number")
    p.add_argument(
        "--format", choices=["torchscript", "state_dict", "onnx"], default="torchscript"
    )
    p.add_argument("--output", required=True, metavar="PATH", help="file to write")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite in $NAS_HOME)")
    p.set_defaults(handler=_export)


# ----------------------------------------------------------------------------- search


def _option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choices(annotation: Any) -> list[str]:
    """The allowed values of a ``Literal`` field (or of an optional one)."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    return [c for arg in get_args(annotation) for c in _choices(arg)]


def _help(field: FieldInfo) -> str:
    text = (field.description or "").rstrip(".")
    default = field.get_default(call_default_factory=True)
    if default is not None and "(default" not in text:
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        text += f" (default: {shown})"
    return text.replace("%", "%%")


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`SearchConfig` field (less :data:`NOT_FLAGS`), help from its
    description. Values stay strings: the config validates them, so a bad one fails as one
    line naming the flag (as the API names the field)."""
    for name, field in SearchConfig.model_fields.items():
        if name in NOT_FLAGS:
            continue
        choices = _choices(field.annotation)
        metavar = "{" + ",".join(choices) + "}" if choices else name.upper()
        if name == "objectives":
            metavar = "A,B"
        parser.add_argument(_option_flag(name), dest=name, metavar=metavar, help=_help(field))


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The search options given on the command line."""
    given = {}
    for name in SearchConfig.model_fields:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name == "objectives":
            value = [o.strip() for o in value.split(",") if o.strip()]
        given[name] = value
    return given


def _config(args: argparse.Namespace) -> SearchConfig:
    from pydantic import ValidationError

    from nas.errors import NasError
    from nas.search import load_search

    given = _given(args)
    try:
        if args.resume:
            stored = load_search(args.resume, args.storage).config
            ignored = sorted(set(given) - RESUMABLE)
            if ignored:
                raise NasError(
                    "--resume continues a search with its stored settings; only "
                    + ", ".join(_option_flag(k) for k in sorted(RESUMABLE))
                    + f" may change (got {', '.join(map(_option_flag, ignored))})"
                )
            return SearchConfig.model_validate(
                stored.model_dump() | given, context={"stored": True}
            )
        return SearchConfig(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_option_flag(str(e['loc'][0])) if e['loc'] else 'options'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise NasError(f"invalid search settings: {problems}") from exc


def _quiet_libraries() -> None:
    """Keep library INFO chatter (MLflow schema migration, Optuna study creation) off the CLI."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    for name in ("mlflow", "optuna", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _search(args: argparse.Namespace) -> int:
    config = _config(args)
    _quiet_libraries()
    from nas import workspace
    from nas.search import run_search
    from nas.tracking_links import results_hint

    if not args.resume and isinstance(config.space, str):
        from nas.space import load_space

        load_space(config.space)  # a wrong name or file fails before anything starts
    tty = sys.stdout.isatty()
    started = time.monotonic()
    print(
        f"{'resuming' if args.resume else 'starting'} search: space "
        f"{config.space if isinstance(config.space, str) else '<inline>'}, budget "
        f"{config.budget}, objectives {', '.join(config.objectives)}, sampler {config.sampler}, "
        f"dataset {config.dataset}",
        flush=True,
    )
    with Reporter(config.budget, tty) as reporter:
        result = run_search(
            config,
            search_id=args.resume,
            on_trial=reporter.on_trial,
            on_progress=reporter.on_progress,
        )
    print_records(result.pareto, result.config.objectives, title="Pareto front", collapse=True)
    storage = config.storage or workspace.optuna_storage_url()
    mlflow_uri = config.mlflow_uri or workspace.mlflow_tracking_uri()
    done = sum(t.finished for t in result.trials)
    failed = sum(t.state == "FAIL" and not t.interrupted for t in result.trials)
    print(
        f"\nsearch {result.search_id} {result.state}: {done}/{config.budget} trials "
        f"({failed} failed) in {fmt_s(time.monotonic() - started)}"
    )
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    if result.state == "cancelled":
        print(f"resume with:   nas search --resume {result.search_id}")
    sid = result.search_id
    print(f"front:         nas pareto {sid}   (all trials: nas trials {sid})")
    if result.pareto:
        print(
            f"export:        nas export {result.search_id} {result.pareto[0].number} "
            "--format torchscript --output model.pt"
        )
    print(results_hint(mlflow_uri, result.search_id))
    print(
        f"Optuna:        optuna-dashboard {storage}  (study {result.study_name}; "
        "pip install 'nas[dashboard]')"
    )
    return {"completed": 0, "cancelled": 130}.get(result.state, 1)


# ----------------------------------------------------------------------------- listings


def _searches(args: argparse.Namespace) -> int:
    from nas.search import list_searches

    rows = list_searches(args.storage)
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no searches yet; start one with `nas search`")
        return 0
    table = [("ID", "NAME", "STATE", "SPACE", "DONE", "FAILED", "SAMPLER", "CREATED")]
    for r in rows:
        table.append(
            (
                r["search_id"],
                r["name"] or "-",
                r["state"],
                str(r["space"]),
                f"{r['complete'] + r['failed']}/{r['budget']}",
                str(r["failed"]),
                str(r["sampler"]),
                (r["created_at"] or "")[:19].replace("T", " "),
            )
        )
    print(text_table(table))
    return 0


def _show(args: argparse.Namespace, which: str) -> int:
    from nas.search import load_search

    result = load_search(args.id, args.storage)
    records = result.pareto if which == "pareto" else result.trials
    objectives = result.config.objectives
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
    elif args.format == "csv":
        from nas.trials_csv import trials_csv

        sys.stdout.write(trials_csv(records, objectives, describe=describe))
    else:
        title = "Pareto front" if which == "pareto" else "Trials"
        print_records(
            records,
            objectives,
            f"{title} of search {result.search_id}",
            collapse=which == "pareto",
        )
    return 0


def _pareto(args: argparse.Namespace) -> int:
    return _show(args, "pareto")


def _trials(args: argparse.Namespace) -> int:
    return _show(args, "trials")


def _export(args: argparse.Namespace) -> int:
    from nas.search.export import export_trial, export_trial_onnx

    if args.format == "onnx":
        done = export_trial_onnx(args.id, args.trial, output=args.output, storage=args.storage)
        diffs = ", ".join(f"{d:.2g} at batch {b}" for b, d in done.max_abs_diff.items())
        print(
            f"wrote onnx (opset {done.opset}) of trial {args.trial} of search {args.id} to "
            f"{done.path}; ONNX Runtime vs PyTorch max abs diff {diffs}"
        )
        return 0
    path = export_trial(
        args.id, args.trial, format=args.format, output=args.output, storage=args.storage
    )
    print(f"wrote {args.format} of trial {args.trial} of search {args.id} to {path}")
    return 0
