"""Export a trained trial: its weights as a TorchScript module or a reloadable state dict.

Every completed trial's trained weights are saved by ``evaluate(weights_path=...)`` to
``$NAS_HOME/searches/<id>/trials/<number>.pt`` on the machine that trained it. When that file
is missing (another node of a Ray cluster, a cleaned workspace, a custom ``trial_fn``) the
trial is re-trained deterministically from its stored settings and seed, then exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from nas import workspace
from nas.errors import NasError
from nas.search.records import SearchResult
from nas.search.store import load_search

__all__ = ["EXPORT_FORMATS", "export_trial", "search_space", "trial_arch", "weights_path"]

EXPORT_FORMATS = ("torchscript", "state_dict")


def weights_path(search_id: str, number: int) -> Path:
    """Where a trial's trained weights are kept in the workspace."""
    return workspace.home() / "searches" / search_id / "trials" / f"{number}.pt"


def search_space(result: SearchResult, storage: str | None = None) -> Any:
    """The space a search ran on (its stored document, so later edits of the file don't count)."""
    import optuna

    from nas.search.attrs import ATTR
    from nas.search.store import get_storage
    from nas.space import load_space, parse_space

    study = optuna.load_study(study_name=result.study_name, storage=get_storage(storage))
    document = study.user_attrs.get(ATTR["space"])
    if document is not None:
        return parse_space(document, source=f"<search {result.search_id}>")
    spec = result.config.space
    return parse_space(spec) if isinstance(spec, dict) else load_space(spec)


def trial_arch(space: Any, record: Any) -> Any:
    """The :class:`nas.space.Arch` of a trial record."""
    from nas.space import Arch, arch_from_params

    if record.arch is not None:
        return Arch.from_dict(record.arch)
    return arch_from_params(space, record.params)


def export_trial(
    search_id: str,
    number: int,
    *,
    format: Literal["torchscript", "state_dict"] = "torchscript",
    output: str | Path,
    storage: str | None = None,
) -> Path:
    """Write trial ``number``'s trained model to ``output``; returns the path.

    ``torchscript``: a traced module, ``torch.jit.load(path)`` runs it. ``state_dict``: a dict
    with ``state_dict``, ``arch`` (``Arch.to_dict()``), ``space`` (the space document) and
    ``num_classes``; rebuild with ``build_model(parse_space(d["space"]),
    Arch.from_dict(d["arch"]), d["num_classes"])`` and ``load_state_dict``.
    """
    if format not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise NasError(f"unknown export format {format!r}; choose from {choices}")
    result = load_search(search_id, storage)
    record = result.trial(number)
    if record.state != "COMPLETE":
        raise NasError(
            f"trial {number} of search {search_id} is {record.state}"
            f"{' (' + record.error + ')' if record.error else ''}; only complete trials "
            "have trained weights"
        )
    import torch

    from nas.space import build_model

    space = search_space(result, storage)
    arch = trial_arch(space, record)
    num_classes = record.metrics.get("num_classes") or space.num_classes
    path = weights_path(search_id, number)
    if not path.exists():
        _retrain(result, space, arch, path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if num_classes is None:
        num_classes = _infer_classes(state)
    model = build_model(space, arch, num_classes=int(num_classes))
    model.load_state_dict(state)
    model.eval()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if format == "state_dict":
        torch.save(
            {
                "state_dict": model.state_dict(),
                "arch": arch.to_dict(),
                "space": space.to_dict(),
                "num_classes": int(num_classes),
                "search_id": search_id,
                "trial": number,
            },
            output,
        )
    else:
        example = torch.zeros(1, *[int(v) for v in space.input_shape])
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(output))
    return output


def _retrain(result: SearchResult, space: Any, arch: Any, path: Path) -> None:
    """Re-train a trial deterministically (same settings and seed) and save its weights."""
    from nas.evaluation import evaluate
    from nas.search.engine import eval_settings

    evaluate(space, arch, eval_settings(result.config, result.config.device), weights_path=path)


def _infer_classes(state: dict[str, Any]) -> int:
    last = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not last:
        raise NasError("cannot tell the number of classes from the saved weights")
    return int(last[-1].shape[0])
