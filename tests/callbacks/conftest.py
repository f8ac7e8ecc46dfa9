"""The app with the callback routes and the applier, until web/app.py wires them itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.routing import NoMatchFound

from waconnect.messaging import callbacks, inbound_routes
from waconnect.messaging.callbacks import start_callback_applier
from waconnect.runtime import Runtime
from waconnect.web.app import create_app


def wire(app: FastAPI) -> None:
    """Add the routers when the app does not have them yet (adding twice would be harmless
    but muddles the OpenAPI document)."""
    if not _has_route(app, "delivery_callback", provider_id="1", token="t"):
        app.include_router(callbacks.router)
    if not _has_route(app, "list_inbound"):
        app.include_router(inbound_routes.router, prefix="/api/v1")


def _has_route(app: FastAPI, name: str, **params: str) -> bool:
    try:
        app.url_path_for(name, **params)
    except NoMatchFound:
        return False
    return True


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in-process, with the callback applier running (idempotent start: when the
    app's lifespan starts it already, this one does nothing)."""
    app = create_app(runtime=runtime, background=[start_callback_applier])
    wire(app)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://waconnect.test") as c:
            yield c
