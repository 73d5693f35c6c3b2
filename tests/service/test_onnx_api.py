"""GET /searches/{id}/trials/{number}/export: the trial's model file, behind the API key."""

from __future__ import annotations

import io
import sys
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture
def stored(app: Any) -> tuple[str, Any]:
    """A service search whose Optuna study holds one complete `tiny` trial with weights, and
    one failed trial (no Ray, no training)."""
    import optuna

    from nas.search.attrs import ATTR
    from nas.search.config import SearchConfig
    from nas.search.export import weights_path
    from nas.search.store import get_storage
    from nas.search.study import open_study
    from nas.space import build_model, default_arch
    from service import crud

    config = SearchConfig(space="tiny", dataset="synthetic", budget=2)
    opened = open_study(config, None, get_storage(None), check=False)
    arch = default_arch(opened.space, "eca")
    torch.manual_seed(0)
    model = build_model(opened.space, arch, num_classes=4).eval()
    attrs = {ATTR["arch"]: arch.to_dict(), ATTR["metrics"]: {"num_classes": 4}}
    opened.study.add_trial(optuna.trial.create_trial(values=[0.5, 1.0], user_attrs=attrs))
    opened.study.add_trial(
        optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs=attrs)
    )
    weights_path(opened.search_id, 0).parent.mkdir(parents=True)
    torch.save(model.state_dict(), weights_path(opened.search_id, 0))
    with app.state.sessionmaker() as session:
        crud.create_search(
            session,
            search_id=opened.search_id,
            config=config.model_dump(mode="json"),
            space_name="tiny",
            name=None,
            budget=2,
            objectives=list(config.objectives),
        )
    return opened.search_id, model


def test_export_onnx_returns_a_checked_model(client: Any, stored: Any) -> None:
    import onnxruntime

    search_id, model = stored
    response = client.get(f"/searches/{search_id}/trials/0/export")  # onnx by default
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert f'filename="{search_id}-trial0.onnx"' in response.headers["content-disposition"]
    assert response.headers["x-onnx-opset"] == "17"
    assert "batch 1: " in response.headers["x-max-abs-diff"]
    session = onnxruntime.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, 8, 8)
    (actual,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(actual, model(x).numpy(), atol=1e-4, rtol=0)

    response = client.get(f"/searches/{search_id}/trials/0/export?format=state_dict")
    assert response.status_code == 200
    saved = torch.load(io.BytesIO(response.content), weights_only=False)
    assert saved["num_classes"] == 4 and saved["trial"] == 0


@pytest.mark.parametrize(
    ("path", "code", "detail"),
    [
        ("/searches/snothere/trials/0/export", 404, "no search with id 'snothere'"),
        ("/searches/{id}/trials/9/export", 404, "has no trial 9"),
        ("/searches/{id}/trials/1/export", 409, "trial 1 of search {id} is FAIL"),
        ("/searches/{id}/trials/0/export?format=tflite", 422, "format"),
        ("/searches/{id}/trials/-1/export", 422, "number"),
    ],
)
def test_export_errors(client: Any, stored: Any, path: str, code: int, detail: str) -> None:
    search_id, _ = stored
    response = client.get(path.format(id=search_id))
    assert response.status_code == code, response.text
    assert detail.format(id=search_id) in response.json()["detail"]


def test_export_without_the_extra_names_it(
    client: Any, stored: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    response = client.get(f"/searches/{stored[0]}/trials/0/export?format=onnx")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "format: format 'onnx' needs the [onnx] extra (pip install 'nas[onnx]'); "
        "onnxruntime is not installed"
    )


def test_export_needs_the_api_key(app: Any, client: Any, stored: Any) -> None:
    app.state.settings.api_key = "s3cret"
    url = f"/searches/{stored[0]}/trials/0/export?format=state_dict"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "s3cret"}).status_code == 200
