"""Helpers for the block tests: a valid configuration of any block for a channel count."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from nas.blocks import get_spec


def config_for(name: str, channels: int) -> dict[str, Any]:
    """The official defaults when valid for ``channels``, else the first valid combination."""
    spec = get_spec(name)
    if spec.is_valid(channels):
        return {}
    combos = spec.valid_combinations(channels)
    assert combos, f"{name} offers no valid combination for channels={channels}"
    return combos[0]


@pytest.fixture(autouse=True)
def _seeded_single_thread() -> Iterator[None]:
    """Seeded, and one intra-op thread: tiny tensors gain nothing from more on a shared CPU."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
