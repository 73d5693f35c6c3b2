"""The attention-block zoo: one module per block family, all declared in one registry.

``create_block(name, channels, **hparams)`` builds a block mapping (B, C, H, W) to the same
shape; ``get_spec(name)`` returns its declaration (paper, hyperparameters with official
defaults and search domains, channel rule). Importing this package registers every block.
"""

from __future__ import annotations

from nas.blocks import (  # noqa: F401  (importing a block module registers it)
    cbam,
    coord_attn,
    criss_cross,
    dual_attn,
    eca,
    gam,
    identity,
    non_local,
    psa,
    scse,
    selective_kernel,
    shuffle_attn,
    squeeze_excite,
)
from nas.blocks._common import make_divisible
from nas.blocks.cbam import CBAM
from nas.blocks.coord_attn import CoordinateAttention
from nas.blocks.criss_cross import CrissCrossAttention
from nas.blocks.dual_attn import DualAttention
from nas.blocks.eca import EfficientChannelAttention
from nas.blocks.gam import GlobalAttention
from nas.blocks.identity import NoAttention
from nas.blocks.non_local import NonLocal
from nas.blocks.psa import PSAConv, PyramidSplitAttention
from nas.blocks.registry import (
    BlockConfigError,
    BlockSpec,
    HParam,
    UnknownBlockError,
    create_block,
    create_conv_block,
    get_spec,
    list_blocks,
    register,
)
from nas.blocks.scse import SCSE
from nas.blocks.selective_kernel import SelectiveKernel, SKConv
from nas.blocks.shuffle_attn import ShuffleAttention
from nas.blocks.squeeze_excite import SqueezeExcite

__all__ = [
    "CBAM",
    "SCSE",
    "BlockConfigError",
    "BlockSpec",
    "CoordinateAttention",
    "CrissCrossAttention",
    "DualAttention",
    "EfficientChannelAttention",
    "GlobalAttention",
    "HParam",
    "NoAttention",
    "NonLocal",
    "PSAConv",
    "PyramidSplitAttention",
    "SKConv",
    "SelectiveKernel",
    "ShuffleAttention",
    "SqueezeExcite",
    "UnknownBlockError",
    "create_block",
    "create_conv_block",
    "get_spec",
    "list_blocks",
    "make_divisible",
    "register",
]
