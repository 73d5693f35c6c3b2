"""The ``onnxruntime`` latency backend: the network as deployed on ONNX Runtime's CPU provider.

The model is exported in memory (:func:`nas.onnx_export.to_onnx`, fixed batch and input shape)
and loaded into one ONNX Runtime session with ``intra_op_num_threads`` equal to the latency
threads, one inter-op thread, sequential execution and every graph optimisation
(:func:`nas.onnx_export.ort_session`). :func:`nas.evaluation.latency.measure_latency` times
the returned pass with the same protocol as the torch backend: warm-up, repeated timed passes,
the same clocks, garbage collection off, under the measurement lock. At one intra-op thread
ONNX Runtime runs the graph on the calling thread (no thread pool), so the thread CPU-time
clock counts the whole pass, as it does for PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nas.onnx_export import INPUT_NAME, OUTPUT_NAME, ort_session, to_onnx

__all__ = ["BACKENDS", "onnx_runner"]

BACKENDS = ("torch", "onnxruntime")


def onnx_runner(model: nn.Module, x: torch.Tensor, threads: int) -> Callable[[], object]:
    """One ONNX Runtime pass of `model` on `x` (a CPU tensor), as a function to time.

    The model is moved to the CPU for the export.
    """
    data = to_onnx(model, tuple(x.shape[1:]), batch_size=int(x.shape[0]), dynamic_batch=False)
    session = ort_session(data, threads=threads)
    feed = {INPUT_NAME: x.detach().cpu().numpy()}
    outputs = [OUTPUT_NAME]

    def run() -> object:
        return session.run(outputs, feed)

    return run
