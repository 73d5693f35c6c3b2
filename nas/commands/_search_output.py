"""What ``nas search`` and ``nas pareto``/``nas trials`` print: progress and trial tables."""

from __future__ import annotations

from typing import Any

__all__ = ["Reporter", "describe", "fmt_s", "print_records", "text_table"]


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def fmt_v(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def fmt_accuracy(record: Any) -> str:
    """The accuracy as ``mean ± sd`` over the training seeds, or the trial's own value."""
    mean, sd = getattr(record, "accuracy_mean", None), getattr(record, "accuracy_sd", None)
    if mean is None:
        return fmt_v(record.values.get("accuracy"))
    return f"{mean:.4f} ± {sd:.4f}" if sd is not None else f"{mean:.4f}"


class Reporter:
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
                TextColumn(
                    "failed {task.fields[failed]}  stopped {task.fields[stopped]}  "
                    "epochs {task.fields[epochs]}  front {task.fields[front]}"
                ),
                TextColumn("elapsed {task.fields[elapsed]}  ETA {task.fields[eta]}"),
                transient=False,
            )
            self.task = self.progress.add_task(
                "trials",
                total=budget,
                failed=0,
                stopped=0,
                epochs=0,
                front=0,
                elapsed="0s",
                eta="?",
            )

    def __enter__(self) -> Reporter:
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
                stopped=getattr(p, "stopped", 0),
                epochs=getattr(p, "epochs", 0),
                front=p.front_size,
                elapsed=fmt_s(p.elapsed_s),
                eta=fmt_s(p.eta_s),
            )
            return
        r, self.last = self.last, None
        what = ""
        if r is not None and confirming:
            what = f"trial {r.number} accuracy {fmt_accuracy(r)} over {r.n_seeds} seeds"
            if r.confirm_error:
                what += f" ({r.confirm_error[:80]})"
        elif r is not None:
            if r.state == "COMPLETE":
                what = " ".join(f"{k}={fmt_v(v)}" for k, v in r.values.items())
            elif r.state == "PRUNED":
                accuracy = fmt_v(r.metrics.get("accuracy"))
                what = f"stopped at epoch {r.stopped_at_epoch} (accuracy {accuracy})"
            else:
                what = f"{r.state}: {r.error}"
            what = f"trial {r.number} {what}"
        where = f"confirming {done}/{total}" if confirming else f"{done}/{total}"
        stopped = f"stopped {p.stopped}, " if getattr(p, "stopped", 0) else ""
        print(
            f"[{where}] {what + ' ' if what else ''}| failed {p.failed}, front {p.front_size}, "
            f"{stopped}epochs {getattr(p, 'epochs', 0)}, "
            f"elapsed {fmt_s(p.elapsed_s)}, ETA {fmt_s(p.eta_s)}",
            flush=True,
        )


def text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def describe(record: Any) -> str:
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


def print_records(
    records: list[Any], objectives: list[str], title: str, *, collapse: bool = False
) -> None:
    names = [o.upper() for o in objectives]
    if "accuracy" in objectives:
        names[objectives.index("accuracy")] = "ACCURACY (MEAN ± SD)"
    header = (
        "TRIAL",
        "STATE",
        *names,
        "TEST_ACCURACY",
        "SEEDS",
        "EPOCHS",
        "STOPPED_AT",
        "FEASIBLE",
        "ARCH",
        "NOTE",
    )
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
                *[_objective(r, o) for o in objectives],
                fmt_v(getattr(r, "test_accuracy", None)) or "-",
                _seeds(r),
                _int(getattr(r, "epochs_trained", None)),
                _int(getattr(r, "stopped_at_epoch", None)),
                "yes" if r.feasible else "no",
                describe(r),
                note,
            )
        )
    count = f"{len(records)} trial{'s' if len(records) != 1 else ''}"
    if len(shown) != len(records):
        count += f", {len(shown)} distinct architectures"
    print(f"\n{title} ({count})")
    if records:
        print(text_table(rows))
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


def _objective(record: Any, objective: str) -> str:
    """An objective's cell; a trial stopped at a rung shows what it had there (``@epoch``)."""
    if record.state == "PRUNED":
        value = fmt_v(record.metrics.get(objective)) or "-"
        return f"{value}@{record.stopped_at_epoch}" if objective == "accuracy" else value
    return fmt_accuracy(record) if objective == "accuracy" else fmt_v(record.values.get(objective))


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)
