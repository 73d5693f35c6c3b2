"""What a trial's MLflow child run is called and tagged with (used by :mod:`nas.tracking`).

Tags: ``feasible``, where the trial ran (``nas.ray_node_id``, ``nas.hostname``), its
``error``, and ``stopped`` (``true`` for a trial the mo-asha scheduler stopped at a rung, with
``nas.stopped_at_epoch``). A stopped trial's run ends KILLED: it neither finished nor failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas.search.records import TrialRecord

__all__ = ["PLACEMENT_KEYS", "trial_run_name", "trial_status", "trial_tags"]

#: Entries of a trial's metrics that say where it ran; logged as ``nas.<key>`` tags.
PLACEMENT_KEYS = ("ray_node_id", "hostname")


def trial_run_name(record: TrialRecord) -> str:
    """``trial 12 · se(r16)|none|ca(r32)|eca``: a child run's name (the arch id where the
    architecture does not parse)."""
    label = record.arch_id or ""
    if record.arch is not None:
        try:
            from nas.space.arch import Arch

            label = Arch.from_dict(record.arch).describe()
        except Exception:  # an arch from another version: its id will do
            pass
    return f"trial {record.number} · {label}"[:250] if label else f"trial {record.number}"


def trial_tags(record: TrialRecord) -> dict[str, str]:
    """The tags of a trial's child run logged with its results (see the module doc)."""
    tags = {"feasible": str(record.feasible).lower()}
    for key in PLACEMENT_KEYS:  # where the trial ran (strings: not metrics)
        value = record.metrics.get(key)
        if isinstance(value, str) and value:
            tags[f"nas.{key}"] = value[:5000]
    if record.error:
        tags["error"] = record.error[:5000]
    tags["stopped"] = str(record.state == "PRUNED").lower()
    if record.stopped_at_epoch is not None:
        tags["nas.stopped_at_epoch"] = str(record.stopped_at_epoch)
    return tags


def trial_status(record: TrialRecord) -> str:
    """The MLflow status a trial's run ends with."""
    return {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(record.state, "FAILED")
