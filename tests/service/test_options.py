"""One options model: the same bad value is refused by SearchConfig (ValidationError), by
``POST /searches`` (422 naming the field) and by ``nas search`` (exit 2, one line)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from pydantic import ValidationError

from nas.cli import main
from nas.commands.search import NOT_FLAGS
from nas.search.config import SearchConfig, SearchOptions
from service.schemas import SearchCreate

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BAD_VALUES = [
    ("gpus_per_trial", 1.5, "fraction below 1"),
    ("dataset", "digitz", "jittered"),
    ("budget", 0, "greater than or equal to 1"),
    ("sampler", "cma", "tpe"),
    ("objectives", ["accuracy", "speed"], "unknown objective 'speed'"),
    ("objectives", ["accuracy", "accuracy"], "must not repeat"),
    ("confirm_seeds", -1, "greater than or equal to 0"),
    ("confirm_max", 0, "greater than or equal to 1"),
    ("cpus_per_trial", 0, "greater than or equal to 1"),
    ("seed", -1, "greater than or equal to 0"),
    ("max_latency_ms", -1, "greater than 0"),
    ("lr", 0, "greater than 0"),
    ("epochs", 0, "greater than or equal to 1"),
    ("device", "tpu", "auto"),
    ("latency_device", "tpu", "cpu"),
    ("space", "nope", "not a space"),
    ("scheduler", "hyperband", "mo-asha"),
    ("eta", 1, "greater than or equal to 2"),
    ("min_epochs", 0, "greater than or equal to 1"),
    ("latency_backend", "tensorrt", "onnxruntime"),
]


def _cli_value(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_python_refuses(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        SearchConfig(**{field: value})
    assert caught.value.errors()[0]["loc"][0] == field


@sqlite_only
@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_api_refuses_with_the_field_path(
    client: Any, field: str, value: Any, message: str
) -> None:
    response = client.post("/searches", json={"budget": 2, field: value})
    assert response.status_code == 422, response.text
    body = response.json()
    assert message in body["detail"]
    assert [e["loc"] for e in body["errors"]] == [["body", field]]


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_cli_refuses_in_one_line(nas_home: Any, field: str, value: Any, message: str) -> None:
    flag = "--" + field.replace("_", "-")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["search", f"{flag}={_cli_value(value)}"])
    assert code == 2
    assert flag in err.getvalue() and message in err.getvalue()
    assert "Traceback" not in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1
    assert "starting search" not in out.getvalue()


def test_every_option_is_a_flag_with_its_description() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(out.getvalue().split())
    for name, field in SearchConfig.model_fields.items():
        if name in NOT_FLAGS:
            continue
        assert "--" + name.replace("_", "-") in text
        assert " ".join((field.description or "").rstrip(".").split()) in text, name


def test_the_api_schema_is_the_options_model() -> None:
    assert issubclass(SearchCreate, SearchOptions) and issubclass(SearchConfig, SearchOptions)
    service_only = set(SearchConfig.model_fields) - set(SearchCreate.model_fields)
    assert service_only == {"storage", "mlflow_uri", "ray_address"}
    for name, field in SearchCreate.model_fields.items():
        assert field.annotation == SearchConfig.model_fields[name].annotation, name


def test_a_first_rung_past_the_last_epoch_is_refused_everywhere(
    nas_home: Any, client: Any
) -> None:
    with pytest.raises(ValidationError, match="min_epochs=5 is more than epochs=3") as caught:
        SearchConfig(scheduler="mo-asha", min_epochs=5)
    assert caught.value.errors()[0]["loc"] == ("min_epochs",)
    assert SearchConfig(scheduler="none", min_epochs=5).min_epochs == 5  # unused without mo-asha
    assert SearchConfig(scheduler="mo-asha", epochs=9, min_epochs=5).min_epochs == 5

    response = client.post(
        "/searches", json={"budget": 2, "scheduler": "mo-asha", "epochs": 4, "min_epochs": 5}
    )
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "min_epochs"]]

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["search", "--scheduler", "mo-asha", "--min-epochs", "5"])
    assert code == 2 and "--min-epochs" in err.getvalue() and "epochs=3" in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1
