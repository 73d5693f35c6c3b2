"""SearchConfig validation, samplers and pure helpers (no Ray)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nas.search import OBJECTIVES, SAMPLERS, SearchConfig
from nas.search.samplers import make_sampler
from nas.search.store import study_name_for


def test_defaults() -> None:
    config = SearchConfig()
    assert config.space == "mobile"
    assert config.objectives == ["accuracy", "latency_ms"]
    assert config.directions() == ["maximize", "minimize"]
    assert config.sampler == "tpe"
    assert config.dataset == "jittered"
    assert (config.seed, config.split_seed, config.confirm_seeds) == (0, 0, 2)
    assert SearchConfig.model_validate(config.model_dump(mode="json")) == config


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"objectives": ["speed"]}, "unknown objective 'speed'"),
        ({"objectives": []}, "at least one objective"),
        ({"objectives": ["accuracy", "accuracy"]}, "must not repeat"),
        ({"budget": 0}, "greater than or equal to 1"),
        ({"sampler": "cma"}, "tpe"),
        ({"gpus_per_trial": 1.5}, "fraction below 1"),
        ({"cpus_per_trial": 0}, "greater than or equal to 1"),
        ({"max_latency_ms": -1}, "greater than 0"),
        ({"confirm_seeds": -1}, "confirm_seeds\n  Input should be greater than or equal to 0"),
        ({"confirm_seeds": 21}, "less than or equal to 20"),
        ({"confirm_max": 0}, "greater than or equal to 1"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"space": "nope"}, "not a space in search_spaces/ \\(available: mobile, resnet, tiny"),
        ({"seed": -1}, "greater than or equal to 0"),
        ({"max_latency_ms": float("inf")}, "finite number"),
    ],
)
def test_bad_config_is_rejected(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SearchConfig(**fields)


def test_space_names_are_checked_paths_and_stored_ones_are_not() -> None:
    assert SearchConfig(space="my/space.yaml").space == "my/space.yaml"
    assert SearchConfig(space="gone.yaml").space == "gone.yaml"
    stored = SearchConfig.model_validate({"space": "gone"}, context={"stored": True})
    assert stored.space == "gone"


def test_samplers_and_objectives_come_from_their_registries() -> None:
    from nas.search.samplers import SAMPLER_FACTORIES

    assert tuple(SAMPLER_FACTORIES) == SAMPLERS
    schema = SearchConfig.model_json_schema()["properties"]
    assert schema["sampler"]["enum"] == list(SAMPLERS)
    for name in OBJECTIVES:
        assert name in schema["objectives"]["description"]


def test_objectives_cover_evaluate_metrics() -> None:
    assert OBJECTIVES == {
        "accuracy": "maximize",
        "latency_ms": "minimize",
        "params": "minimize",
        "flops": "minimize",
    }


@pytest.mark.parametrize("name", ["tpe", "nsga2", "random", "gp"])
def test_samplers(name: str) -> None:
    import optuna

    assert isinstance(make_sampler(name, seed=0, budget=20), optuna.samplers.BaseSampler)


def test_unknown_sampler() -> None:
    with pytest.raises(ValueError, match="choose from tpe, nsga2, random, gp"):
        make_sampler("cma", seed=0, budget=10)


@pytest.mark.parametrize(
    ("name", "expected"),
    [(None, "s1"), ("", "s1"), ("my run", "my-run-s1"), ("///", "s1"), ("a.b_c", "a.b_c-s1")],
)
def test_study_names(name: str | None, expected: str) -> None:
    assert study_name_for("s1", name) == expected
