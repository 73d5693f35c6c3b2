"""A valid configuration of any block for a channel count (shared by the block tests).

Kept out of ``conftest.py``: ``from conftest import ...`` resolves to whichever test
directory's conftest was imported first when several directories run together.
"""

from __future__ import annotations

from typing import Any

from nas.blocks import get_spec


def config_for(name: str, channels: int) -> dict[str, Any]:
    """The official defaults when valid for ``channels``, else the first valid combination."""
    spec = get_spec(name)
    if spec.is_valid(channels):
        return {}
    combos = spec.valid_combinations(channels)
    assert combos, f"{name} offers no valid combination for channels={channels}"
    return combos[0]
