"""``/docs`` and ``/redoc`` load their JavaScript and CSS from the service, not from a CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
        ("/redoc", ("redoc.standalone.js",)),
    ],
)
def test_docs_pages_use_only_local_assets(client: Any, page: str, assets: tuple[str, ...]) -> None:
    html = client.get(page).text
    urls = re.findall(r"""(?:src|href)=["']?([^"' >]+)""", html)
    urls += re.findall(r"""url: ['"]([^'"]+)['"]""", html)
    assert urls and not [u for u in urls if "//" in u]  # nothing from another host
    for name in assets:
        local = [u for u in urls if u.endswith(name)]
        assert local, f"{page} does not load {name}"
        response = client.get(local[0])
        assert response.status_code == 200 and len(response.content) > 10_000


def test_swagger_ui_reads_openapi_3_1(client: Any) -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on."""
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    html = client.get("/docs").text
    bundle = next(u for u in re.findall(r"""src=["']([^"']+)""", html) if "swagger-ui" in u)
    assert b"oas/3.1" in client.get(bundle).content
