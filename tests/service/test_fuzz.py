"""Schema-driven fuzzing (schemathesis 4) of every route: valid and invalid requests built from
the OpenAPI schema never get a 500, and every response matches the documented schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SCALE = int(os.environ.get("NAS_FUZZ_SCALE", "1"))  # more examples for a longer local run
EXAMPLES = {GenerationMode.POSITIVE: 25 * SCALE, GenerationMode.NEGATIVE: 15 * SCALE}


@pytest.fixture
def fuzzed_schema(nas_home: Path) -> Any:
    """The API on a fresh SQLite database, holding one search with trials to find."""
    from service import crud
    from service.core.config import Settings
    from service.db import make_sessionmaker
    from service.main import create_app

    # NAS_FUZZ_DATABASE_URL: fuzz against another (empty) database, e.g. a PostgreSQL one.
    url = os.environ.get("NAS_FUZZ_DATABASE_URL") or f"sqlite:///{nas_home / 'service.db'}"
    if os.environ.get("NAS_FUZZ_DATABASE_URL"):
        from service.db import create_db_engine
        from service.models import Base

        engine = create_db_engine(url)
        Base.metadata.drop_all(engine)
        engine.dispose()
    app = create_app(Settings(database_url=url))
    with make_sessionmaker(app.state.engine)() as session:
        crud.create_search(
            session,
            search_id="sfuzz",
            config={"space": "tiny", "budget": 2},
            space_name="tiny",
            name=None,
            budget=2,
            objectives=["accuracy", "latency_ms"],
        )
        records = [
            {"number": 0, "state": "COMPLETE", "values": {"accuracy": 0.5, "latency_ms": 1.0}},
            {"number": 1, "state": "FAIL", "error": "NaN loss"},
        ]
        crud.upsert_trials(session, search_id="sfuzz", records=records)
        crud.refresh_front(session, search_id="sfuzz")
        session.commit()
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.engine.dispose()


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_no_server_error_and_documented_responses(fuzzed_schema: Any, mode: Any) -> None:
    operations = [result.ok() for result in fuzzed_schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:
        known = {"search_id": "sfuzz"} if "{search_id}" in operation.path else None

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode == GenerationMode.NEGATIVE
        if known is not None:  # also hit the existing search, not only random ids

            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=known))
            @settings(
                max_examples=5 * SCALE,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check_known(case: Any) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                check_known()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE
