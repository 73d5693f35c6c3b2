"""ONNX export of a network: in memory, checked by ``onnx.checker``, compared with PyTorch.

Exporter: torch.onnx's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) at
opset :data:`OPSET`, with a dynamic batch axis for files and a fixed batch for latency. On
torch 2.13 both exporters export every block of the zoo (the torch.export-based one, the
default since torch 2.9, needs no rewrite of criss-cross attention's mask), but on the 2-core
dev machine the torch.export-based one took 9-13 s per ``mobile`` network against 0.3-0.5 s
here, and the ``onnxruntime`` latency backend exports every trial. Opset 17 is the newest
that TensorRT 8.6 and OpenVINO 2023 read, and every block needs nothing newer.

ONNX and ONNX Runtime are the optional ``[onnx]`` extra: :func:`require_onnx` turns their
absence into one :class:`NasError` naming it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import NasError

__all__ = [
    "EXPORTER",
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "TOLERANCE",
    "OnnxCheck",
    "OnnxExportError",
    "export_checked",
    "max_abs_diff",
    "ort_session",
    "require_onnx",
    "to_onnx",
]

OPSET = 17
EXPORTER = "torchscript"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
TOLERANCE = 1e-4
"""Largest absolute difference between ONNX Runtime's and PyTorch's outputs accepted."""
EXTRA = "the [onnx] extra (pip install 'nas[onnx]')"


class OnnxExportError(NasError):
    """A network does not export to ONNX, or ONNX Runtime does not compute what PyTorch does."""


def require_onnx(purpose: str) -> tuple[ModuleType, ModuleType]:
    """The ``onnx`` and ``onnxruntime`` modules, or a :class:`NasError` naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        missing = exc.name or "onnx"
        raise NasError(f"{purpose} needs {EXTRA}; {missing} is not installed") from None
    return onnx, onnxruntime


@contextlib.contextmanager
def _eval_on_cpu(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode on the CPU; its mode is restored afterwards (it stays on the CPU)."""
    was_training = model.training
    model.cpu().eval()
    try:
        yield model
    finally:
        model.train(was_training)


def to_onnx(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    dynamic_batch: bool = True,
) -> bytes:
    """`model` (moved to the CPU, exported in eval mode) as a checked ONNX model.

    The graph has one input ``input`` of shape (batch, *input_shape) and one output
    ``output``; with `dynamic_batch` the batch axis is symbolic, else it is `batch_size`.
    Raises :class:`OnnxExportError` naming the block that does not export, when one does not.
    """
    onnx, _ = require_onnx("ONNX export")
    shape = tuple(int(v) for v in input_shape)
    example = torch.zeros(batch_size, *shape)
    with _eval_on_cpu(model):
        try:
            data = _export(model, example, dynamic_batch)
            onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
        except Exception as exc:
            raise OnnxExportError(_explain(model, example, exc)) from exc
    return data


def _export(model: nn.Module, example: torch.Tensor, dynamic_batch: bool) -> bytes:
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter announces its deprecation on every call; tracing warns
        # about shapes read as Python numbers, which are constant at a fixed input shape.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
        )
    return buffer.getvalue()


def _explain(model: nn.Module, example: torch.Tensor, exc: Exception) -> str:
    """One line: the first attention block that does not export on its own, and why."""
    from nas.blocks import get_spec, list_blocks

    names = {get_spec(name).cls: name for name in list_blocks()}
    inputs: dict[str, tuple[str, nn.Module, torch.Tensor]] = {}
    hooks = []
    for path, module in model.named_modules():
        if type(module) in names:

            def keep(mod: nn.Module, args: tuple[Any, ...], path: str = path) -> None:
                inputs.setdefault(path, (names[type(mod)], mod, args[0]))

            hooks.append(module.register_forward_pre_hook(keep))
    try:
        with torch.no_grad():
            model(example)
    except Exception:
        pass
    finally:
        for hook in hooks:
            hook.remove()
    for path, (name, module, x) in inputs.items():
        try:
            _export(module, x, dynamic_batch=False)
        except Exception as block_exc:
            where = path or "the root"
            return f"block {name} at {where} does not export to ONNX: {_why(block_exc)}"
    return f"the network does not export to ONNX: {_why(exc)}"


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def ort_session(data: bytes, *, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session for latency: `threads` intra-op threads, one inter-op
    thread, sequential execution, every graph optimisation, denormals flushed to zero."""
    _, ort = require_onnx("ONNX Runtime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def max_abs_diff(model: nn.Module, session: Any, x: torch.Tensor) -> float:
    """Largest absolute difference between `session`'s and `model`'s (eval, CPU) outputs."""
    with _eval_on_cpu(model), torch.no_grad():
        expected = model(x).numpy()
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    if actual.shape != expected.shape:
        raise OnnxExportError(
            f"ONNX Runtime returned shape {actual.shape}, PyTorch {expected.shape}"
        )
    return float(np.max(np.abs(actual - expected))) if expected.size else 0.0


@dataclass(frozen=True)
class OnnxCheck:
    """An exported model and how closely ONNX Runtime reproduces PyTorch on it."""

    data: bytes
    max_abs_diff: dict[int, float]
    """Per batch size checked, the largest absolute difference of the outputs."""
    opset: int = OPSET
    exporter: str = EXPORTER

    @property
    def worst(self) -> float:
        """The largest difference over the batch sizes checked."""
        return max(self.max_abs_diff.values())


def export_checked(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_sizes: Sequence[int] = (1, 8),
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> OnnxCheck:
    """Export `model` with a dynamic batch, run it in ONNX Runtime on seeded random inputs
    of each batch size and compare with PyTorch; :class:`OnnxExportError` past `tolerance`."""
    data = to_onnx(model, input_shape)
    session = ort_session(data)
    generator = torch.Generator().manual_seed(seed)
    shape = tuple(int(v) for v in input_shape)
    diffs = {}
    for batch in batch_sizes:
        x = torch.randn((batch, *shape), generator=generator)
        diffs[int(batch)] = max_abs_diff(model, session, x)
    check = OnnxCheck(data=data, max_abs_diff=diffs)
    if not check.worst <= tolerance:
        raise OnnxExportError(
            f"ONNX Runtime's output differs from PyTorch's by {check.worst:.3g} "
            f"(more than {tolerance:g}) on a seeded random input"
        )
    return check
