"""/docs works offline (own static assets), /openapi.json lists the API, /healthz answers."""

from __future__ import annotations

import re

import httpx

API_PATHS = {
    "/api/v1/workspace",
    "/api/v1/keys",
    "/api/v1/keys/{key_id}",
    "/api/v1/providers",
    "/api/v1/providers/{provider_id}",
    "/api/v1/providers/{provider_id}/rotate-token",
}


async def test_docs_reference_only_local_assets_which_are_served(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert len(assets) >= 2, html
    for asset in assets:
        assert asset.startswith("/static/"), asset
    # Nothing is fetched from a CDN, not even from inside the inline script.
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr", html), html
    assert "'/openapi.json'" in html or '"/openapi.json"' in html
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 100, asset
        suffix = asset[asset.rfind(".") :]
        assert kinds[suffix] in served.headers["content-type"], (asset, served.headers)
    bundle = next(asset for asset in assets if asset.endswith(".js"))
    assert b"SwaggerUIBundle" in (await client.get(bundle)).content


async def test_openapi_lists_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "waconnect"
    assert set(spec["paths"]) >= API_PATHS
    providers = spec["paths"]["/api/v1/providers"]
    assert {"get", "post"} <= set(providers)
    assert {"get", "patch", "delete"} <= set(spec["paths"]["/api/v1/providers/{provider_id}"])
    assert "/_test/clock" not in spec["paths"]


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
