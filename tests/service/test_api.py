"""The REST API on SQLite and PostgreSQL: submit, list, read, cancel; bad input gets a 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from service import crud
from service.models import Search

TINY = {
    "backbone": "mobilenet_v2",
    "input_shape": [1, 8, 8],
    "small_input": True,
    "stem_width": 8,
    "head_width": 16,
    "stages": [{"width": 8, "expansion": 2, "stride": 1, "attention": ["none", "se"]}],
}


sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests that never reach the database: PostgreSQL would add time, not coverage."""


def submit(client: Any, **body: Any) -> dict[str, Any]:
    body.setdefault("space", "tiny")
    body.setdefault("budget", 3)
    response = client.post("/searches", json=body)
    assert response.status_code == 202, response.text
    return response.json()


@sqlite_only
def test_health(client: Any) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_submit_returns_id_links_and_location(client: Any) -> None:
    response = client.post(
        "/searches", json={"space": "tiny", "budget": 4, "dataset": "synthetic", "name": "demo"}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["links"]["self"] == f"/searches/{body['id']}"
    assert response.headers["location"] == body["links"]["self"]
    assert body["config"]["space"] == "tiny" and body["config"]["dataset"] == "synthetic"
    assert body["progress"] == {
        "done": 0,
        "failed": 0,
        "budget": 4,
        "front_size": 0,
        "fraction": 0.0,
        "eta_s": None,
        "phase": "trials",
        "confirm_done": 0,
        "confirm_total": 0,
    }
    again = client.get(body["links"]["self"]).json()
    assert again["id"] == body["id"] and again["name"] == "demo"


def test_list_is_paginated_and_filtered(client: Any) -> None:
    ids = [submit(client)["id"] for _ in range(5)]
    cancelled = ids[0]
    assert client.post(f"/searches/{cancelled}/cancel").json()["status"] == "cancelled"
    page = client.get("/searches", params={"limit": 2, "offset": 0}).json()
    assert page["count"] == 5 and len(page["data"]) == 2
    assert [s["id"] for s in page["data"]] == ids[::-1][:2]
    rest = client.get("/searches", params={"limit": 10, "offset": 2}).json()
    assert [s["id"] for s in rest["data"]] == ids[::-1][2:]
    queued = client.get("/searches", params={"status": "queued"}).json()
    assert queued["count"] == 4 and cancelled not in {s["id"] for s in queued["data"]}
    only = client.get("/searches", params={"status": "cancelled"}).json()
    assert [s["id"] for s in only["data"]] == [cancelled]


def test_inline_space_json_and_yaml(client: Any) -> None:
    body = submit(client, space=TINY)
    assert body["config"]["space"] == TINY
    yaml_text = (
        "backbone: mobilenet_v2\ninput_shape: [1, 8, 8]\nsmall_input: true\n"
        "stages:\n  - {width: 8, attention: [none, eca]}\n"
    )
    body = submit(client, space=yaml_text)
    assert body["config"]["space"]["stages"][0]["attention"] == ["none", "eca"]


BAD_BODIES = [
    ({"space": "nope"}, "unknown space 'nope'"),
    ({"space": "../search_spaces/tiny"}, "unknown space"),
    ({"space": "/etc/passwd"}, "unknown space"),
    ({"space": "tiny", "budget": 0}, "budget"),
    ({"space": "tiny", "budget": 10**12}, "budget"),
    ({"space": "tiny", "budget": 501}, "NAS_MAX_BUDGET"),
    ({"space": "tiny", "budget": "many"}, "budget"),
    ({"space": "tiny", "objectives": ["speed"]}, "objectives"),
    ({"space": "tiny", "objectives": ["accuracy", "accuracy"]}, "must not repeat"),
    ({"space": "tiny", "sampler": "grid"}, "sampler"),
    ({"space": "tiny", "storage": "sqlite:////tmp/x.db"}, "storage"),
    ({"space": "tiny", "dataset": "imagenet"}, "dataset"),
    ({"space": "tiny", "data_dir": "../../etc"}, "data_dir"),
    ({"space": "tiny", "max_latency_ms": -1}, "max_latency_ms"),
    ({"space": "tiny", "confirm_seeds": -1}, "confirm_seeds"),
    ({"space": "tiny", "confirm_seeds": 21}, "confirm_seeds"),
    ({"space": "tiny", "confirm_max": 0}, "confirm_max"),
    ({"space": "tiny", "name": "a\x00b"}, "name"),
    ({"space": 5}, "space"),
    ({"space": {**TINY, "stages": [{"width": 8, "attention": ["warp"]}]}}, "warp"),
    ({"space": {"backbone": "vgg"}}, "space"),
    ({"space": "stages: [unclosed\n"}, "space"),
    ({"space": "- a\n- b\n"}, "mapping"),
    ([1, 2], "body"),
]


@sqlite_only
@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_bodies_get_422_saying_what_to_fix(client: Any, body: Any, message: str) -> None:
    response = client.post("/searches", json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


@sqlite_only
def test_negative_confirm_seeds_is_refused_with_the_field_path(client: Any) -> None:
    response = client.post("/searches", json={"space": "tiny", "confirm_seeds": -1})
    assert response.status_code == 422, response.text
    body = response.json()
    assert "confirm_seeds" in body["detail"]
    assert [e["loc"] for e in body["errors"]] == [["body", "confirm_seeds"]]
    assert "greater than or equal to 0" in body["errors"][0]["msg"]


@sqlite_only
def test_seeds_and_confirmation_options_reach_the_config(client: Any) -> None:
    body = submit(client, seed=3, split_seed=7, confirm_seeds=0, confirm_max=4)
    config = body["config"]
    assert (config["seed"], config["split_seed"]) == (3, 7)
    assert (config["confirm_seeds"], config["confirm_max"]) == (0, 4)
    assert submit(client)["config"]["confirm_seeds"] == 2


@sqlite_only
def test_yaml_alias_bomb_is_refused(client: Any) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    response = client.post("/searches", json={"space": "\n".join(lines) + "\n"})
    assert response.status_code == 422
    assert "values" in response.json()["detail"]


@sqlite_only
def test_malformed_json_and_wrong_content(client: Any) -> None:
    response = client.post(
        "/searches", content=b'{"space": "tiny",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]
    response = client.post("/searches", content=b"space=tiny")
    assert response.status_code == 422


@sqlite_only
def test_large_body_gets_413(client: Any) -> None:
    big = {"space": {**TINY, "description": "x" * (1024 * 1024 + 10)}}
    response = client.post("/searches", json=big)
    assert response.status_code == 413
    assert "NAS_MAX_BODY_BYTES" in response.json()["detail"]

    def chunks() -> Any:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * 32768

    response = client.post(
        "/searches", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_unknown_search_is_404_everywhere(client: Any) -> None:
    for path in ("", "/trials", "/pareto", "/pareto.png"):
        response = client.get(f"/searches/s000{path}")
        assert response.status_code == 404, path
        assert "no search with id 's000'" in response.json()["detail"]
    assert client.post("/searches/s000/cancel").status_code == 404


def test_cancel(client: Any, app: Any) -> None:
    queued = submit(client)
    response = client.post(f"/searches/{queued['id']}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    response = client.post(f"/searches/{queued['id']}/cancel")
    assert response.status_code == 409
    assert "already cancelled" in response.json()["detail"]

    running = submit(client)
    with app.state.sessionmaker() as session:
        session.get(Search, running["id"]).status = "running"
        session.commit()
    response = client.post(f"/searches/{running['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["cancel_requested"]


def test_queue_limit_gives_429(app: Any, client: Any) -> None:
    app.state.settings.max_queued = 2
    submit(client)
    submit(client)
    response = client.post("/searches", json={"space": "tiny", "budget": 1})
    assert response.status_code == 429
    assert "NAS_MAX_QUEUED" in response.json()["detail"]


def _seed_trials(app: Any, search_id: str, rows: list[tuple[float, float, bool]]) -> None:
    with app.state.sessionmaker() as session:
        records = [
            {
                "number": i,
                "state": "COMPLETE",
                "params": {"stage0.attention": "se"},
                "arch": {"stages": [{"attention": "se"}]},
                "arch_id": f"arch{i}",
                "values": {"accuracy": acc, "latency_ms": lat},
                "metrics": {"accuracy": acc, "latency_ms": lat, "params": 100 + i, "flops": 7e3},
                "feasible": feasible,
                "mlflow_run_id": f"r{i}",
            }
            for i, (acc, lat, feasible) in enumerate(rows)
        ]
        records.append({"number": len(rows), "state": "FAIL", "error": "NaN loss"})
        crud.upsert_trials(session, search_id=search_id, records=records)
        crud.refresh_front(session, search_id=search_id)
        session.commit()


def test_trials_and_pareto(client: Any, app: Any) -> None:
    search = submit(client, budget=10)
    rows = [(0.5, 2.0, True), (0.7, 3.0, True), (0.6, 4.0, True), (0.9, 1.0, False)]
    _seed_trials(app, search["id"], rows)
    pareto = client.get(f"/searches/{search['id']}/pareto").json()
    assert pareto["objectives"] == ["accuracy", "latency_ms"]
    assert pareto["directions"] == ["maximize", "minimize"]
    assert [p["number"] for p in pareto["data"]] == [0, 1]  # 2 dominated, 3 infeasible
    point = pareto["data"][1]
    assert point["arch_id"] == "arch1" and point["arch"] == {"stages": [{"attention": "se"}]}
    assert point["values"] == {"accuracy": 0.7, "latency_ms": 3.0}
    assert point["num_params"] == 101 and point["flops"] == 7000
    assert point["feasible"] is True and point["mlflow_run_id"] == "r1"
    trials = client.get(f"/searches/{search['id']}/trials").json()
    assert trials["count"] == 5 and [t["number"] for t in trials["data"]] == list(range(5))
    assert trials["data"][4]["state"] == "FAIL" and trials["data"][4]["error"] == "NaN loss"
    failed = client.get(f"/searches/{search['id']}/trials", params={"state": "FAIL"}).json()
    assert failed["count"] == 1
    progress = client.get(f"/searches/{search['id']}").json()["progress"]
    assert progress["done"] == 5 and progress["failed"] == 1 and progress["front_size"] == 2
    png = client.get(f"/searches/{search['id']}/pareto.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


def test_trials_are_unique_per_search_and_number(client: Any, app: Any) -> None:
    search = submit(client)
    _seed_trials(app, search["id"], [(0.5, 2.0, True)])
    _seed_trials(app, search["id"], [(0.8, 2.0, True)])  # same numbers again: updated in place
    trials = client.get(f"/searches/{search['id']}/trials").json()
    assert trials["count"] == 2
    assert trials["data"][0]["values"]["accuracy"] == 0.8


@sqlite_only
def test_spaces_and_blocks(client: Any) -> None:
    spaces = client.get("/spaces").json()
    names = [s["name"] for s in spaces["data"]]
    assert "tiny" in names and "mobile" in names
    tiny = client.get("/spaces/tiny").json()
    assert tiny["document"]["backbone"] == "mobilenet_v2"
    missing = client.get("/spaces/nope")
    assert missing.status_code == 404 and "tiny" in missing.json()["detail"]
    assert client.get("/spaces/..%2Fpyproject").status_code == 404
    blocks = client.get("/blocks").json()
    by_name = {b["name"]: b for b in blocks["data"]}
    assert {"se", "eca", "none"} <= set(by_name)
    assert [h["name"] for h in by_name["se"]["hparams"]] == ["reduction"]


@sqlite_only
def test_api_key(app: Any, client: Any) -> None:
    app.state.settings.api_key = "s3cret"
    assert client.get("/health").status_code == 200
    for method, path in [("get", "/searches"), ("get", "/spaces"), ("get", "/blocks")]:
        response = getattr(client, method)(path)
        assert response.status_code == 401, path
        assert "X-API-Key" in response.json()["detail"]
    assert client.post("/searches", json={"space": "tiny"}).status_code == 401
    assert client.get("/searches", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/searches", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/searches", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/searches", headers={"Authorization": "Bearer s3cret"}).status_code == 200


@sqlite_only
def test_the_api_docs_are_open_with_an_api_key_and_hold_no_data(app: Any, client: Any) -> None:
    """Decided: /docs, /redoc and /openapi.json need no key (a browser cannot send one to load
    them); they describe the routes, and every data route still answers 401."""
    app.state.settings.api_key = "s3cret"
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    schema = client.get("/openapi.json").json()
    assert "except `/health` and this documentation" in schema["info"]["description"]
    protected = [
        path
        for path, ops in schema["paths"].items()
        for op in ops.values()
        if "401" in op["responses"]
    ]
    assert set(schema["paths"]) - set(protected) == {"/health"}


@sqlite_only
def test_openapi_documents_every_route(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    expected = {
        ("post", "/searches"),
        ("get", "/searches"),
        ("get", "/searches/{search_id}"),
        ("get", "/searches/{search_id}/trials"),
        ("get", "/searches/{search_id}/pareto"),
        ("get", "/searches/{search_id}/pareto.png"),
        ("post", "/searches/{search_id}/cancel"),
        ("get", "/spaces"),
        ("get", "/spaces/{name}"),
        ("get", "/blocks"),
        ("get", "/health"),
    }
    found = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert expected <= found
    for method, path in expected:
        op = schema["paths"][path][method]
        assert op.get("summary") and op.get("description"), (method, path)
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes)
        if "{search_id}" in path:
            assert "404" in codes, (method, path)
        if path != "/health":
            assert "401" in codes, (method, path)


def test_text_with_nul_characters_is_stored_or_refused(client: Any) -> None:
    body = {"space": {**TINY, "description": "a\x00b"}, "budget": 1}
    response = client.post("/searches", json=body)
    assert response.status_code in (202, 422), response.text
    if response.status_code == 202:
        got = client.get(f"/searches/{response.json()['id']}").json()
        assert got["config"]["space"]["description"] == "a\x00b"


def test_default_app_reads_the_environment(nas_home: Any) -> None:
    import service.main

    app = service.main.app
    assert app.state.settings.database_url == f"sqlite:///{nas_home / 'service.db'}"
    del service.main.app  # the next access builds a new one


def test_a_finished_trial_never_turns_back_into_a_running_one(client: Any, app: Any) -> None:
    search = submit(client)
    done = {"number": 0, "state": "COMPLETE", "values": {"accuracy": 0.5, "latency_ms": 1.0}}
    with app.state.sessionmaker() as session:
        crud.upsert_trials(session, search_id=search["id"], records=[done])
        crud.upsert_trials(
            session, search_id=search["id"], records=[{"number": 0, "state": "RUNNING"}]
        )
        crud.upsert_trials(
            session, search_id=search["id"], records=[{"number": 1, "state": "RUNNING"}]
        )
        crud.upsert_trials(
            session,
            search_id=search["id"],
            records=[{"number": 1, "state": "FAIL", "error": "x", "interrupted": True}],
        )
        session.commit()
    trials = client.get(f"/searches/{search['id']}/trials").json()["data"]
    assert [(t["number"], t["state"]) for t in trials] == [(0, "COMPLETE"), (1, "FAIL")]
    assert trials[0]["values"] == {"accuracy": 0.5, "latency_ms": 1.0}
    assert trials[1]["interrupted"] is True


def test_the_service_can_share_a_database_with_optuna(nas_home: Any) -> None:
    import optuna
    from fastapi.testclient import TestClient

    from service.core.config import Settings
    from service.main import create_app

    nas_home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{nas_home / 'shared.db'}"
    optuna.create_study(storage=url, study_name="other")  # Optuna's own tables, e.g. trials
    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        search = submit(client)
        assert client.get(f"/searches/{search['id']}/trials").json()["count"] == 0
    assert optuna.load_study(study_name="other", storage=url).trials == []
    app.state.engine.dispose()


def test_a_long_inline_space_name_is_stored_or_refused(client: Any) -> None:
    response = client.post("/searches", json={"space": {**TINY, "name": "n" * 500}})
    assert response.status_code in (202, 422), response.text
    if response.status_code == 202:
        assert client.get(response.json()["links"]["self"]).json()["space"] == "n" * 200
