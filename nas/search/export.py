"""Export a trained trial: a TorchScript module, a reloadable state dict or an ONNX model.

ONNX (the ``[onnx]`` extra): exported by :mod:`nas.onnx_export` (TorchScript-based exporter,
opset 17, input ``input`` with a dynamic batch axis, output ``output``), checked with
``onnx.checker``, run in ONNX Runtime at batch 1 and 8 and compared with PyTorch on the same
seeded inputs; the export fails past a max abs difference of 1e-4. The search id, trial number
and architecture go into the model's metadata (``nas.search_id``, ``nas.trial``, ``nas.arch``).

Every completed trial's trained weights are saved by ``evaluate(weights_path=...)`` to
``$NAS_HOME/searches/<id>/trials/<number>.pt`` on the machine that trained it. When that file
is missing (another node of a Ray cluster, a cleaned workspace, a custom ``trial_fn``) the
trial is re-trained deterministically from its stored settings and seed, then exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nas import workspace
from nas.errors import NasError
from nas.search.records import SearchResult
from nas.search.store import load_search

__all__ = [
    "EXPORT_FORMATS",
    "OnnxExport",
    "TrialNotComplete",
    "export_trial",
    "export_trial_onnx",
    "search_space",
    "trial_arch",
    "weights_path",
]

EXPORT_FORMATS = ("torchscript", "state_dict", "onnx")
ExportFormat = Literal["torchscript", "state_dict", "onnx"]


class TrialNotComplete(NasError):
    """The trial asked for did not complete, so it has no trained weights to export."""


@dataclass(frozen=True)
class OnnxExport:
    """Where an ONNX export was written and how closely ONNX Runtime reproduces PyTorch."""

    path: Path
    max_abs_diff: dict[int, float]
    """Per batch size (1 and 8), the largest absolute difference of the outputs."""
    opset: int
    exporter: str


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
    format: ExportFormat = "torchscript",
    output: str | Path,
    storage: str | None = None,
) -> Path:
    """Write trial ``number``'s trained model to ``output``; returns the path.

    ``torchscript``: a traced module, ``torch.jit.load(path)`` runs it. ``state_dict``: a dict
    with ``state_dict``, ``arch`` (``Arch.to_dict()``), ``space`` (the space document) and
    ``num_classes``; rebuild with ``build_model(parse_space(d["space"]),
    Arch.from_dict(d["arch"]), d["num_classes"])`` and ``load_state_dict``. ``onnx``: see
    :func:`export_trial_onnx`.
    """
    if format not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise NasError(f"unknown export format {format!r}; choose from {choices}")
    if format == "onnx":
        return export_trial_onnx(search_id, number, output=output, storage=storage).path
    import torch

    model, space, arch, num_classes = _trained_model(search_id, number, storage)
    output = _prepare(output)
    if format == "state_dict":
        torch.save(
            {
                "state_dict": model.state_dict(),
                "arch": arch.to_dict(),
                "space": space.to_dict(),
                "num_classes": num_classes,
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


def export_trial_onnx(
    search_id: str, number: int, *, output: str | Path, storage: str | None = None
) -> OnnxExport:
    """Write trial ``number``'s trained model as ONNX to ``output``, checked against PyTorch.

    Raises :class:`NasError` naming the ``[onnx]`` extra when it is not installed, and
    :class:`nas.onnx_export.OnnxExportError` when the network does not export or ONNX
    Runtime's outputs differ from PyTorch's by more than 1e-4.
    """
    from nas.onnx_export import require_onnx

    onnx, _ = require_onnx("ONNX export (format onnx)")
    from nas.onnx_export import export_checked

    model, space, arch, _ = _trained_model(search_id, number, storage)
    check = export_checked(model, space.input_shape, batch_sizes=(1, 8))
    proto = onnx.load_from_string(check.data)
    metadata = {"nas.search_id": search_id, "nas.trial": str(number), "nas.arch": arch.to_json()}
    onnx.helper.set_model_props(proto, metadata)
    output = _prepare(output)
    output.write_bytes(proto.SerializeToString())
    return OnnxExport(output, check.max_abs_diff, check.opset, check.exporter)


def _prepare(output: str | Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    return output


def _trained_model(search_id: str, number: int, storage: str | None) -> tuple[Any, Any, Any, int]:
    """(model in eval mode with the trained weights, space, arch, class count) of a trial."""
    result = load_search(search_id, storage)
    record = result.trial(number)
    if record.state != "COMPLETE":
        raise TrialNotComplete(
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
    return model, space, arch, int(num_classes)


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
