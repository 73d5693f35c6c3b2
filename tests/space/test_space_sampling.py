"""Optuna define-by-run sampling, rebuilding from stored params, Arch JSON and ids."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest

from nas.errors import NasError
from nas.space import (
    Arch,
    SpaceError,
    arch_from_params,
    build_model,
    default_arch,
    load_space,
    parse_space,
    suggest,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample(space_name: str, n: int, sampler: optuna.samplers.BaseSampler | None = None):
    space = load_space(space_name)
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=1))
    out = []
    for _ in range(n):
        trial = study.ask()
        arch = suggest(trial, space)
        out.append((trial, arch))
        study.tell(trial, 0.0)
    return space, study, out


@pytest.mark.parametrize("space_name", ["tiny", "mobile", "resnet"])
def test_parameters_are_conditional_and_choices_fixed(space_name: str) -> None:
    space, _, trials = sample(space_name, 150)
    declared = space.parameters()
    for trial, arch in trials:
        for name, dist in trial.distributions.items():
            # same name, same choices in every trial (Optuna requires it)
            assert list(dist.choices) == declared[name]
        for i, (stage, chosen) in enumerate(zip(space.stages, arch.stages, strict=True)):
            if len(stage.attention) > 1:
                assert trial.params[f"stage{i}.attention"] == chosen.attention
            # hyperparameters only of the chosen block, all of its searched ones
            prefix = f"stage{i}."
            hp_names = {n for n in trial.params if n.startswith(prefix) and n.count(".") == 2}
            expected = {
                f"stage{i}.{chosen.attention}.{p}"
                for p, values in stage.hparams[chosen.attention].items()
                if len(values) > 1
            }
            assert hp_names == expected
            assert set(chosen.hparams) == set(stage.hparams[chosen.attention])


def test_all_blocks_get_sampled_in_mobile() -> None:
    space, _, trials = sample("mobile", 150)
    seen = {s.attention for _, arch in trials for s in arch.stages}
    assert seen == set(space.stages[0].attention)


def test_tpe_and_nsga2_samplers_work_define_by_run() -> None:
    for sampler in (
        optuna.samplers.TPESampler(seed=0, n_startup_trials=5),
        optuna.samplers.NSGAIISampler(seed=0, population_size=6),
    ):
        _, study, trials = sample("tiny", 15, sampler)
        assert len(study.trials) == 15
        assert len({a.id for _, a in trials}) > 1


@pytest.mark.parametrize("space_name", ["tiny", "mobile", "resnet"])
def test_params_rebuild_the_same_arch(space_name: str) -> None:
    space, _, trials = sample(space_name, 60)
    for trial, arch in trials:
        again = arch_from_params(space, trial.params)
        assert again == arch and again.id == arch.id
        fixed = suggest(optuna.trial.FixedTrial(trial.params), space)
        assert fixed.id == arch.id


def test_arch_json_round_trip_and_ids() -> None:
    _, _, trials = sample("mobile", 80)
    archs = [a for _, a in trials]
    for arch in archs:
        text = arch.to_json()
        assert Arch.from_json(text) == arch
        assert Arch.from_dict(json.loads(text)).id == arch.id
        assert 10 <= len(arch.id) <= 12 and arch.id.isalnum()
    # distinct architectures, distinct ids
    assert len({a.to_json() for a in archs}) == len({a.id for a in archs})


def test_ids_are_the_same_in_another_process() -> None:
    _, _, trials = sample("mobile", 20)
    params = [t.params for t, _ in trials]
    code = (
        "import json, sys\n"
        "from nas.space import arch_from_params, load_space\n"
        "space = load_space('mobile')\n"
        "params = json.load(sys.stdin)\n"
        "print(json.dumps([arch_from_params(space, p).id for p in params]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(done.stdout) == [a.id for _, a in trials]


def test_describe_is_compact() -> None:
    space = load_space("mobile")
    n = len(space.stages)
    assert default_arch(space, "se").describe() == "|".join(["se(r16)"] * n)
    assert default_arch(space).describe() == "|".join(["none"] * n)
    tiny = load_space("tiny")
    # sa is offered only in stage 1 of tiny; stage 0 falls back to none
    assert default_arch(tiny, "sa").describe() == "none|sa(g8)"
    # official defaults not offered become the nearest offered value: sa's 64 groups -> 8
    # (16 channels allow 4 and 8); se's reduction 16 -> 8 in stage 0's narrowed {4, 8}
    assert default_arch(tiny, "se").describe() == "se(r8)|se(r16)"
    # tiny searches stage 0's depth and stage 1's kernel; the first listed values are default
    assert default_arch(tiny).describe(structure=True) == "none[w8d1e2k3]|none[w16d1e2k3]"


def test_default_arch_rejects_unknown_blocks() -> None:
    with pytest.raises(NasError, match="unknown block 'bogus'"):
        default_arch(load_space("tiny"), "bogus")


def test_bad_params_are_space_errors() -> None:
    space = load_space("tiny")
    params = {"stage0.depth": 1, "stage0.attention": "se", "stage1.kernel": 3}
    with pytest.raises(SpaceError, match=r"stage0\.se\.reduction: missing"):
        arch_from_params(space, params)
    params |= {"stage0.se.reduction": 4, "stage1.attention": "cbam"}
    with pytest.raises(SpaceError, match=r"stage1\.attention: 'cbam' is not one of"):
        arch_from_params(space, params)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"backbone": "resnet"}, "stages"),
        ({"backbone": "resnet", "stages": [{"attention": "se"}]}, "stages[0].width"),
        ({"backbone": "resnet", "stages": [], "colour": 1}, "colour"),
        ({"backbone": "resnet", "small_input": "no", "stages": [{}]}, "small_input"),
    ],
)
def test_malformed_arch_dicts(data: dict, field: str) -> None:
    with pytest.raises(SpaceError) as info:
        Arch.from_dict(data)
    assert info.value.field == field
    with pytest.raises(SpaceError, match="not valid JSON"):
        Arch.from_json("{")


def test_build_model_checks_classes_and_backbone() -> None:
    tiny = load_space("tiny")
    arch = default_arch(tiny, "eca")
    with pytest.raises(SpaceError, match="num_classes"):
        build_model(tiny, arch)
    model = build_model(tiny, arch, num_classes=7)
    assert model.classifier[-1].out_features == 7
    with_classes = parse_space(tiny.to_dict() | {"num_classes": 4})
    assert build_model(with_classes, arch).classifier[-1].out_features == 4
    with pytest.raises(SpaceError, match="stages"):
        build_model(load_space("mobile"), arch, num_classes=3)
    with pytest.raises(SpaceError, match="backbone"):
        build_model(load_space("resnet"), arch, num_classes=3)
