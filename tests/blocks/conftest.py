"""Helpers for the block tests: a valid configuration of any block for a channel count."""

from __future__ import annotations

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
def _seeded() -> None:
    torch.manual_seed(0)
