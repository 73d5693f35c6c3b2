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
        help="export a trained trial (TorchScript or state dict)",
        description="Write a complete trial's trained model. torchscript: torch.jit.load(PATH). "
        "state_dict: torch.load(PATH) gives state_dict, arch, space and num_classes.",
    )
    p.add_argument("id", metavar="ID", help="search id")
    p.add_argument("trial", metavar="TRIAL", type=int, help="trial number")
    p.add_argument("--format", choices=["torchscript", "state_dict"], default="torchscript")
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


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _fmt_v(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _fmt_accuracy(record: Any) -> str:
    """The accuracy as ``mean ± sd`` over the training seeds, or the trial's own value."""
    mean, sd = getattr(record, "accuracy_mean", None), getattr(record, "accuracy_sd", None)
    if mean is None:
        return _fmt_v(record.values.get("accuracy"))
    return f"{mean:.4f} ± {sd:.4f}" if sd is not None else f"{mean:.4f}"


class _Reporter:
    """A live rich progress bar on a TTY, plain lines otherwise; after the budget, the same
    bar counts the confirmation runs ("confirming k/n")."""

    def __init__(self, budget: int, tty: bool) -> None:
        self.tty = tty
        self.last: Any = None
        self.progress: Any = None
        self.task: Any = None
        if tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}  front {task.fields[front]}"),
                TextColumn("elapsed {task.fields[elapsed]}  ETA {task.fields[eta]}"),
                transient=False,
            )
            self.task = self.progress.add_task(
                "trials", total=budget, failed=0, front=0, elapsed="0s", eta="?"
            )

    def __enter__(self) -> _Reporter:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def on_trial(self, record: Any) -> None:
        self.last = record

    def on_progress(self, p: Any) -> None:
        confirming = getattr(p, "phase", "trials") == "confirming"
        done, total = (p.confirm_done, p.confirm_total) if confirming else (p.done, p.budget)
        if self.progress is not None:
            self.progress.update(
                self.task,
                description="confirming" if confirming else "trials",
                completed=done,
                total=total,
                failed=p.failed,
                front=p.front_size,
                elapsed=_fmt_s(p.elapsed_s),
                eta=_fmt_s(p.eta_s),
            )
            return
        r, self.last = self.last, None
        what = ""
        if r is not None and confirming:
            what = f"trial {r.number} accuracy {_fmt_accuracy(r)} over {r.n_seeds} seeds"
            if r.confirm_error:
                what += f" ({r.confirm_error[:80]})"
        elif r is not None:
            if r.state == "COMPLETE":
                what = " ".join(f"{k}={_fmt_v(v)}" for k, v in r.values.items())
            else:
                what = f"{r.state}: {r.error}"
            what = f"trial {r.number} {what}"
        where = f"confirming {done}/{total}" if confirming else f"{done}/{total}"
        print(
            f"[{where}] {what + ' ' if what else ''}| failed {p.failed}, front {p.front_size}, "
            f"elapsed {_fmt_s(p.elapsed_s)}, ETA {_fmt_s(p.eta_s)}",
            flush=True,
        )


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
    with _Reporter(config.budget, tty) as reporter:
        result = run_search(
            config,
            search_id=args.resume,
            on_trial=reporter.on_trial,
            on_progress=reporter.on_progress,
        )
    _print_records(result.pareto, result.config.objectives, title="Pareto front", collapse=True)
    storage = config.storage or workspace.optuna_storage_url()
    mlflow_uri = config.mlflow_uri or workspace.mlflow_tracking_uri()
    done = sum(t.finished for t in result.trials)
    failed = sum(t.state == "FAIL" and not t.interrupted for t in result.trials)
    print(
        f"\nsearch {result.search_id} {result.state}: {done}/{config.budget} trials "
        f"({failed} failed) in {_fmt_s(time.monotonic() - started)}"
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
    print(_text_table(table))
    return 0


def _text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _describe(record: Any) -> str:
    if record.arch is None:
        return "-"
    try:
        from nas.space import Arch

        return Arch.from_dict(record.arch).describe()
    except Exception:
        return record.arch_id or "-"


def _collapse_repeats(records: list[Any]) -> tuple[list[Any], dict[int, list[int]]]:
    """One record per architecture (the first trial), with the numbers of its repeats.

    A sampler may propose an architecture again; the repeat reuses the first result, so on a
    front it is the same point and listing it again says nothing new.
    """
    first: dict[str, Any] = {}
    repeats: dict[int, list[int]] = {}
    kept = []
    for r in records:
        if r.arch_id is not None and r.arch_id in first:
            repeats[first[r.arch_id].number].append(r.number)
            continue
        if r.arch_id is not None:
            first[r.arch_id] = r
        repeats[r.number] = []
        kept.append(r)
    return kept, repeats


def _print_records(
    records: list[Any], objectives: list[str], title: str, *, collapse: bool = False
) -> None:
    names = [o.upper() for o in objectives]
    if "accuracy" in objectives:
        names[objectives.index("accuracy")] = "ACCURACY (MEAN ± SD)"
    header = ("TRIAL", "STATE", *names, "TEST_ACCURACY", "SEEDS", "FEASIBLE", "ARCH", "NOTE")
    rows = [header]
    shown, repeats = _collapse_repeats(records) if collapse else (records, {})
    for r in shown:
        state = "INTERRUPTED" if r.interrupted else r.state
        again = repeats.get(r.number)
        note = (r.error or getattr(r, "confirm_error", None) or "")[:60]
        if again:
            note = (
                f"same architecture as trial{'s' if len(again) > 1 else ''} "
                + ", ".join(str(n) for n in again[:5])
                + (f" (+{len(again) - 5})" if len(again) > 5 else "")
            )
        rows.append(
            (
                str(r.number),
                state,
                *[
                    _fmt_accuracy(r) if o == "accuracy" else _fmt_v(r.values.get(o))
                    for o in objectives
                ],
                _fmt_v(getattr(r, "test_accuracy", None)) or "-",
                _seeds(r),
                "yes" if r.feasible else "no",
                _describe(r),
                note,
            )
        )
    count = f"{len(records)} trial{'s' if len(records) != 1 else ''}"
    if len(shown) != len(records):
        count += f", {len(shown)} distinct architectures"
    print(f"\n{title} ({count})")
    if records:
        print(_text_table(rows))
    if any(getattr(r, "confirm_candidate", False) for r in shown):
        print(
            "accuracy: validation mean ± sd over SEEDS training seeds (* = confirmed with "
            "every seed); TEST_ACCURACY: held-out test split, mean over the same seeds"
        )


def _seeds(record: Any) -> str:
    """Training seeds of the accuracy shown, ``*`` marking a complete confirmation."""
    n = getattr(record, "n_seeds", 0)
    if not n:
        return "-"
    return f"{n}*" if getattr(record, "confirmed", False) else str(n)


def _show(args: argparse.Namespace, which: str) -> int:
    from nas.search import load_search

    result = load_search(args.id, args.storage)
    records = result.pareto if which == "pareto" else result.trials
    objectives = result.config.objectives
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
    elif args.format == "csv":
        from nas.trials_csv import trials_csv

        sys.stdout.write(trials_csv(records, objectives, describe=_describe))
    else:
        title = "Pareto front" if which == "pareto" else "Trials"
        _print_records(
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
    from nas.search.export import export_trial

    path = export_trial(
        args.id, args.trial, format=args.format, output=args.output, storage=args.storage
    )
    print(f"wrote {args.format} of trial {args.trial} of search {args.id} to {path}")
    return 0
