"""Every block computes what the official code computes.

For each block with public code, a reference module written from the official forward
(``official_reference.py``) gets random weights, which are copied into the project's block
through an explicit name map: a reference tensor that maps to nothing, or a block tensor that
nothing maps to, fails the test. Outputs (eval, train, eval again) and the BatchNorm running
statistics updated by the train step must then agree to 1e-5 in float32 and 1e-10 in
float64, at two channel counts, on a non-square input; in float64 the input and parameter
gradients must agree as well. GAM has no official code and is checked against its paper's
equations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import official_reference as ref
import pytest
import torch
from torch import nn

from nas.blocks import create_block, create_conv_block

Target = str | tuple[str, ...]
"""A block tensor name; a tuple splits the reference tensor evenly along dim 0."""
NameMap = dict[str, Target]

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
HEIGHT, WIDTH = 6, 10


def wb(src: str, dst: str) -> NameMap:
    return {f"{src}.weight": f"{dst}.weight", f"{src}.bias": f"{dst}.bias"}


def w(src: str, dst: str) -> NameMap:
    return {f"{src}.weight": f"{dst}.weight"}


def bn(src: str, dst: str) -> NameMap:
    names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return {f"{src}.{n}": f"{dst}.{n}" for n in names}


def _core(shape: torch.Size) -> tuple[int, ...]:
    """The shape without its 1-sized axes: a Linear weight equals a 1x1 conv weight."""
    return tuple(s for s in shape if s != 1)


def mapped_pairs(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], name_map: NameMap
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(block name, reference tensor or chunk, block tensor)``; every name must be mapped."""
    unmapped = sorted(set(source) - set(name_map))
    assert not unmapped, f"reference tensors that map to nothing: {unmapped}"
    unknown = sorted(set(name_map) - set(source))
    assert not unknown, f"the map names tensors the reference lacks: {unknown}"
    dst = [t for v in name_map.values() for t in ((v,) if isinstance(v, str) else v)]
    assert len(dst) == len(set(dst)), "a block tensor is filled twice"
    missing = sorted(set(target) - set(dst))
    assert not missing, f"block tensors left unmapped: {missing}"
    absent = sorted(set(dst) - set(target))
    assert not absent, f"the map names tensors the block lacks: {absent}"
    for src_name, names in name_map.items():
        names = (names,) if isinstance(names, str) else names
        tensor = source[src_name]
        chunks = tensor.chunk(len(names), dim=0) if len(names) > 1 else (tensor,)
        assert len(chunks) == len(names), src_name
        for name, chunk in zip(names, chunks, strict=True):
            assert _core(chunk.shape) == _core(target[name].shape), (src_name, name)
            yield name, chunk, target[name]


def copy_by_map(reference: nn.Module, block: nn.Module, name_map: NameMap) -> None:
    """Copy every parameter and buffer of ``reference`` into ``block`` through the map."""
    with torch.no_grad():
        for _, src, dst in mapped_pairs(reference.state_dict(), block.state_dict(), name_map):
            dst.copy_(src.reshape(dst.shape))


def randomise(module: nn.Module) -> None:
    """Random values for what starts constant (gammas, norm affines, SA weights, biases) and
    for BatchNorm statistics; randomly initialised weights keep their values."""
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() < 2 or torch.all(p == p.reshape(-1)[0]):
                p.copy_(0.5 * torch.randn_like(p))
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.2 * torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
            elif name.endswith("num_batches_tracked"):
                buf.fill_(3)


def close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str) -> None:
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol, msg=lambda m: f"{what}: {m}")


def _merge(*maps: NameMap) -> NameMap:
    merged: NameMap = {}
    for m in maps:
        assert not set(m) & set(merged), "a reference tensor is mapped twice"
        merged |= m
    return merged


class DANetPair(nn.Module):
    """DANet's PAM and CAM on one input. DANet runs them on separate head branches (each with
    its own residual) and sums the branches after further convs; the project's drop-in
    block shares one residual: ``x + (PAM(x) - x) + (CAM(x) - x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pam = ref.PAMModule(channels)
        self.cam = ref.CAMModule()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pam(x) + self.cam(x) - x


# reference name -> block name, one map per block family
SE_MAP = _merge(wb("fc1", "fc1"), wb("fc2", "fc2"))
ECA_MAP = w("conv", "conv")
CBAM_MAP = _merge(
    wb("channel_gate.mlp.1", "channel.mlp.0"),
    wb("channel_gate.mlp.3", "channel.mlp.2"),
    w("spatial_gate.spatial.conv", "spatial.conv"),
    bn("spatial_gate.spatial.bn", "spatial.bn"),
)
SCSE_MAP = _merge(wb("cSE.fc1", "cse.1"), wb("cSE.fc2", "cse.3"), wb("sSE.conv", "sse.0"))
CA_MAP = _merge(
    wb("conv1", "conv1"), bn("bn1", "bn1"), wb("conv_h", "conv_h"), wb("conv_w", "conv_w")
)
SA_MAP = _merge({n: n for n in ("cweight", "cbias", "sweight", "sbias")}, wb("gn", "gn"))
PSA_MAP = _merge(
    *(w(f"conv_{i + 1}", f"convs.{i}") for i in range(4)),
    wb("se.fc1", "se.fc1"),
    wb("se.fc2", "se.fc2"),
)
SK_MAP = _merge(
    w("conv_3x3", "branches.0.0"),
    bn("bn_3x3", "branches.0.1"),
    w("conv_3x3d2", "branches.1.0"),
    bn("bn_3x3d2", "branches.1.1"),
    w("fc1", "fc.0"),
    bn("fc1_bn", "fc.1"),
    {"fc2.weight": ("fcs.0.weight", "fcs.1.weight")},  # rows 0..C-1: 3x3, C..2C-1: dilated
)
NONLOCAL_MAP = _merge(
    wb("theta", "theta"), wb("phi", "phi"), wb("g", "g"), wb("out", "w"), bn("bn", "bn")
)
CC_MAP = _merge(
    wb("query_conv", "query"), wb("key_conv", "key"), wb("value_conv", "value"), {"gamma": "gamma"}
)
DA_MAP = _merge(
    wb("pam.query_conv", "pam.query"),
    wb("pam.key_conv", "pam.key"),
    wb("pam.value_conv", "pam.value"),
    {"pam.gamma": "pam.gamma", "cam.gamma": "cam.gamma"},
)
GAM_MAP = _merge(
    {"w1": "channel_attention.0.weight", "b1": "channel_attention.0.bias"},
    {"w2": "channel_attention.2.weight", "b2": "channel_attention.2.bias"},
    wb("conv1", "spatial_attention.0"),
    bn("bn1", "spatial_attention.1"),
    wb("conv2", "spatial_attention.3"),
    bn("bn2", "spatial_attention.4"),
)


@dataclass(frozen=True)
class Case:
    """A block (or conv form) built for ``c`` input channels and the module it must equal."""

    id: str
    block: Callable[[int], nn.Module]
    reference: Callable[[int], nn.Module]
    name_map: NameMap
    channels: tuple[int, int]


CASES = [
    Case("se", lambda c: create_block("se", c), ref.SEModule, SE_MAP, (32, 64)),
    Case(  # adaptive kernel: 3 for 32 channels, 5 for 128
        "eca",
        lambda c: create_block("eca", c),
        lambda c: ref.ECALayer(ref.eca_paper_kernel(c)),
        ECA_MAP,
        (32, 128),
    ),
    Case("cbam", lambda c: create_block("cbam", c), ref.CBAMModule, CBAM_MAP, (32, 64)),
    Case(
        "scse",
        lambda c: create_block("scse", c),
        ref.ChannelSpatialSELayer,
        SCSE_MAP,
        (16, 32),
    ),
    # mip = max(8, C // 32): 8 for 64 channels, 16 for 512
    Case("ca", lambda c: create_block("ca", c), ref.CoordAtt, CA_MAP, (64, 512)),
    Case("sa", lambda c: create_block("sa", c), ref.SALayer, SA_MAP, (128, 256)),
    Case(
        "psa", lambda c: create_block("psa", c), lambda c: ref.PSAModule(c, c), PSA_MAP, (64, 128)
    ),
    Case(
        "psa-conv-stride2",
        lambda c: create_conv_block("psa", c, 2 * c, stride=2),
        lambda c: ref.PSAModule(c, 2 * c, stride=2),
        PSA_MAP,
        (32, 64),
    ),
    Case("sk", lambda c: create_block("sk", c), lambda c: ref.SKUnit(c, c), SK_MAP, (32, 64)),
    Case(
        "sk-conv-stride2",
        lambda c: create_conv_block("sk", c, 2 * c, stride=2),
        lambda c: ref.SKUnit(c, 2 * c, stride=2),
        SK_MAP,
        (32, 64),
    ),
    Case(
        "nonlocal",
        lambda c: create_block("nonlocal", c),
        lambda c: ref.NonLocal2d(c, c // 2),
        NONLOCAL_MAP,
        (16, 32),
    ),
    Case(
        "nonlocal-no-subsample",
        lambda c: create_block("nonlocal", c, subsample=False),
        lambda c: ref.NonLocal2d(c, c // 2, use_maxpool=False),
        NONLOCAL_MAP,
        (16, 32),
    ),
    Case(
        "cc",
        lambda c: create_block("cc", c),
        lambda c: ref.CrissCrossAttention(c, recurrence=2),
        CC_MAP,
        (16, 32),
    ),
    Case(
        "cc-recurrence1",
        lambda c: create_block("cc", c, recurrence=1),
        lambda c: ref.CrissCrossAttention(c, recurrence=1),
        CC_MAP,
        (16, 32),
    ),
    Case("da", lambda c: create_block("da", c), DANetPair, DA_MAP, (16, 32)),
    Case(
        "gam-paper-equations",
        lambda c: create_block("gam", c),
        ref.GAMEquations,
        GAM_MAP,
        (16, 32),
    ),
]


def check_equivalence(case: Case, channels: int, dtype: torch.dtype) -> None:
    """Copy random reference weights into the block; eval, train, eval must all agree."""
    reference = case.reference(channels).to(dtype)
    block = case.block(channels).to(dtype)
    randomise(reference)
    name_map = case.name_map
    copy_by_map(reference, block, name_map)
    tol = TOL[dtype]
    x = torch.randn(2, channels, HEIGHT, WIDTH, dtype=dtype)
    for step, training in enumerate((False, True, False)):
        reference.train(training)
        block.train(training)
        x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected, actual = reference(x_ref), block(x_ours)
        assert actual.dtype == dtype
        close(actual, expected, tol, f"{case.id} C={channels} {dtype} step {step} output")
        if training and dtype == torch.float64:
            # gradients in float64 only: in float32 a gradient whose true value is 0 (a bias
            # followed by a BatchNorm in training) comes out as rounding noise of a large sum
            probe = torch.randn_like(expected)
            (expected * probe).sum().backward()
            (actual * probe).sum().backward()
            close(x_ours.grad, x_ref.grad, tol, f"{case.id} input gradient")
            grads = {n: p.grad for n, p in reference.named_parameters()}
            ours = {n: p.grad for n, p in block.named_parameters()}
            params = {k: v for k, v in name_map.items() if k in grads}
            for name, g_ref, g_ours in mapped_pairs(grads, ours, params):
                # sums over batch and positions: compared relative to their largest entry
                scale = max(1.0, g_ref.abs().max().item())
                g_ref = g_ref.reshape(g_ours.shape)
                close(g_ours, g_ref, tol * scale, f"{case.id} grad of {name}")
        if training:
            state = mapped_pairs(reference.state_dict(), block.state_dict(), name_map)
            for name, s_ref, s_ours in state:  # running statistics after one train step
                close(s_ours, s_ref.reshape(s_ours.shape), tol, f"{case.id} {name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_block_matches_official_code(case: Case, dtype: torch.dtype) -> None:
    for channels in case.channels:
        check_equivalence(case, channels, dtype)


def test_every_block_with_official_code_is_covered() -> None:
    covered = {c.id.split("-")[0] for c in CASES}
    assert covered == {"se", "eca", "cbam", "scse", "ca", "sa", "psa", "sk"} | {
        "nonlocal",
        "cc",
        "da",
        "gam",
    }


def test_name_map_must_cover_both_sides() -> None:
    reference, block = ref.SEModule(32), create_block("se", 32)
    full = SE_MAP
    copy_by_map(reference, block, full)
    with pytest.raises(AssertionError, match="map to nothing"):
        copy_by_map(reference, block, {k: v for k, v in full.items() if k != "fc2.bias"})
    with pytest.raises(AssertionError, match="left unmapped"):
        copy_by_map(reference, block, full | {"fc2.bias": ()})
    with pytest.raises(AssertionError, match="filled twice"):
        copy_by_map(reference, block, full | {"fc2.bias": "fc1.bias"})
    with pytest.raises(AssertionError, match="block lacks"):
        copy_by_map(reference, block, full | {"fc2.bias": ("fc2.bias", "fc3.bias")})
    with pytest.raises(AssertionError, match="reference lacks"):
        copy_by_map(reference, block, full | {"fc3.bias": "fc2.bias"})


def test_a_changed_weight_is_detected() -> None:
    """The comparison can fail: a block that differs in one weight does not pass."""
    case = next(c for c in CASES if c.id == "psa")
    reference, block = case.reference(64), case.block(64)
    randomise(reference)
    copy_by_map(reference, block, case.name_map)
    with torch.no_grad():
        block.convs[3].weight[0, 0, 0, 0] += 1e-3
    x = torch.randn(2, 64, HEIGHT, WIDTH)
    with pytest.raises(AssertionError):
        close(block.eval()(x), reference.eval()(x), TOL[torch.float32], "nudged psa")
