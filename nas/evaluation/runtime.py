"""Device and CPU-thread helpers shared by training and latency measurement."""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Iterator

import torch

from nas.evaluation.errors import EvaluationError

__all__ = ["cpu_threads", "device_name", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """`"auto"` is CUDA when available, else the CPU; asking for missing CUDA is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EvaluationError(f"device {device!r} requested but CUDA is not available here")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise EvaluationError(f"unknown device {device!r}; use auto, cpu or cuda") from exc


def device_name(device: torch.device) -> str:
    """A readable name of the hardware: the GPU model, or the CPU model."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return _cpu_name()


@functools.cache
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


@contextlib.contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """Run the block with `threads` intra-op CPU threads, then restore the previous count."""
    previous = torch.get_num_threads()
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
