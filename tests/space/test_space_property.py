"""Property: every sampled architecture of every shipped space builds and runs.

Hundreds of random Optuna samples per space; models are cached by arch id. The ResNet-50
space is costly on a CPU: 60 samples and every block in every stage are built on the meta
device (every block is constructed and its rules checked), and forward passes run on a
reduced 3x16x16 input for architectures that together use every block, plus two samples.
"""

from __future__ import annotations

import optuna
import pytest
import torch

from nas.space import Arch, build_model, default_arch, load_space, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)


def random_archs(space_name: str, n: int, seed: int) -> list[Arch]:
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(n):
        trial = study.ask()
        archs.append(suggest(trial, space))
        study.tell(trial, 0.0)
    return archs


def forward(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(1, *shape))


@pytest.mark.parametrize(("space_name", "n"), [("tiny", 300), ("mobile", 200)])
def test_samples_build_and_run(space_name: str, n: int) -> None:
    torch.manual_seed(0)
    space = load_space(space_name)
    archs = random_archs(space_name, n, seed=7)
    archs += [default_arch(space, block) for block in space.stages[0].attention]
    seen: dict[str, tuple[int, ...]] = {}
    for arch in archs:
        if arch.id in seen:
            continue
        y = forward(build_model(space, arch, num_classes=10), space.input_shape)
        assert y.shape == (1, 10)
        assert torch.isfinite(y).all(), arch
        seen[arch.id] = tuple(y.shape)
    assert len(seen) > n // 2


def test_resnet_samples_build_and_run() -> None:
    space = load_space("resnet")
    blocks = sorted({block for stage in space.stages for block in stage.attention})
    samples = random_archs("resnet", 60, seed=3)
    # every block in every stage, at its default hyperparameters
    per_block = [default_arch(space, block) for block in blocks]
    with torch.device("meta"):
        for arch in samples + per_block:
            model = build_model(space, arch, num_classes=10)
            assert model.fc.out_features == 10
    # forward passes: every block once (block k+i in stage i), plus two random samples
    rotations = []
    for k in range(0, len(blocks), len(space.stages)):
        stages = [per_block[(k + i) % len(blocks)].stages[i] for i in range(len(space.stages))]
        rotations.append(
            Arch(
                backbone=space.backbone,
                stages=tuple(stages),
                small_input=space.small_input,
                stem_width=space.stem_width,
                head_width=space.head_width,
            )
        )
    covered = {s.attention for arch in rotations for s in arch.stages}
    assert covered == set(blocks)
    for arch in rotations + samples[:2]:
        with torch.device("meta"):
            model = build_model(space, arch, num_classes=10)
        # zero weights instead of the costly initialisation: the pass checks shapes and ops
        model = model.to_empty(device="cpu")
        for param in model.parameters():
            param.data.zero_()
        for name, buffer in model.named_buffers():
            buffer.fill_(1.0 if name.endswith("running_var") else 0.0)
        y = forward(model, (3, 16, 16))
        assert y.shape == (1, 10)
        assert torch.isfinite(y).all(), arch
