"""Model profile: parameter count, FLOPs (``torch.utils.flop_counter``) and activation memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ModelProfile", "count_parameters", "profile_model"]


@dataclass(frozen=True)
class ModelProfile:
    """``flops`` counts a multiply-add as 2 (torch's convention); ``activation_bytes`` is the
    total size of every leaf module's output in one forward pass (what training keeps)."""

    params: int
    flops: int
    activation_bytes: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (works on the meta device too)."""
    return sum(p.numel() for p in model.parameters())


def profile_model(
    model: nn.Module, input_shape: tuple[int, int, int], batch_size: int = 1
) -> ModelProfile:
    """Profile one forward pass of ``model`` in eval mode on a zero input of ``input_shape``."""
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros((batch_size, *input_shape), device=device, dtype=dtype)
    activation = 0

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal activation
        if isinstance(output, torch.Tensor):
            activation += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(m.children())]
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return ModelProfile(
        params=count_parameters(model),
        flops=int(counter.get_total_flops()),
        activation_bytes=int(activation),
    )
