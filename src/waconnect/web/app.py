"""The one ASGI app: REST API under /api/v1, callbacks, docs, health, (later) the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from waconnect import __version__
from waconnect.campaigns.routes import router as campaigns_router
from waconnect.dashboard.routes import install_dashboard
from waconnect.db.migrate import upgrade_async
from waconnect.journeys.routes import router as journeys_router
from waconnect.messaging.callbacks import CallbacksFirstApp, start_callback_applier
from waconnect.messaging.callbacks import router as callbacks_router
from waconnect.messaging.inbound_routes import router as inbound_router
from waconnect.messaging.routes import router as messages_router
from waconnect.profiles.routes import router as profiles_router
from waconnect.providers.routes import router as providers_router
from waconnect.runtime import Runtime, share_test_clock
from waconnect.settings import Settings
from waconnect.templates.routes import router as templates_router
from waconnect.web.errors import ApiError, install_error_handlers
from waconnect.web.limits import BodyGuard
from waconnect.workspaces.routes import router as workspaces_router
from waconnect.workspaces.service import ensure_default_workspace

log = logging.getLogger("waconnect")
STATIC = Path(__file__).parent / "static"

# Something that runs beside the API for the app's lifetime (the worker); returns a stopper.
Background = Callable[[Runtime], Awaitable[Callable[[], Awaitable[None]]]]


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    router.include_router(workspaces_router)
    router.include_router(providers_router)
    router.include_router(templates_router)
    router.include_router(messages_router)
    router.include_router(inbound_router)
    router.include_router(profiles_router)
    router.include_router(journeys_router)
    router.include_router(campaigns_router)
    return router


async def prepare_database(runtime: Runtime) -> None:
    """Apply migrations and make sure the default workspace exists."""
    await upgrade_async(runtime.settings.resolved_database_url)
    async with runtime.sessions() as session:
        await ensure_default_workspace(session, runtime.clock)
        await session.commit()


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    background: list[Background] | None = None,
) -> FastAPI:
    runtime = runtime or Runtime.build(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await prepare_database(runtime)
        # Callbacks arrive at every server process, with or without a worker.
        stop_callbacks = await start_callback_applier(runtime)
        starters = list(background or [])
        if runtime.settings.run_worker:
            from waconnect.worker import start_worker

            starters.append(start_worker)
        stoppers = [await start(runtime) for start in starters]
        try:
            yield
        finally:
            for stop in reversed(stoppers):
                await stop()
            await stop_callbacks()
            await runtime.close()

    # A FastAPI app that answers provider callbacks before its own machinery (callbacks.py).
    app = CallbacksFirstApp(
        title="waconnect",
        version=__version__,
        description="Self-hostable WhatsApp engagement platform. Every /api/v1 call needs "
        "`Authorization: Bearer <key>`; create a key with `waconnect keys create`.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(
        BodyGuard,
        api_limit=runtime.settings.api_body_limit,
        callback_limit=runtime.settings.callback_body_limit,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # First: the router is matched in order, and callbacks are the hottest path.
    app.include_router(callbacks_router)
    app.include_router(api_router())
    # Pages at /, their HTML error pages wrapping the API's JSON ones (after those are installed).
    install_dashboard(app)
    _add_docs(app)
    _add_health(app)
    if runtime.settings.test_controls:
        _add_test_controls(app, runtime)
    return app


def _add_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Served from our own static files: /docs works offline.
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="waconnect API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        async with runtime.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
        return JSONResponse({"status": "ok", "version": __version__})


class ClockMove(BaseModel):
    advance_seconds: float | None = None
    set: datetime | None = None


def _add_test_controls(app: FastAPI, runtime: Runtime) -> None:
    """Only with WACONNECT_TEST_CONTROLS: lets a test move the business clock of this process."""

    @app.post("/_test/clock", include_in_schema=False)
    async def move_clock(body: ClockMove) -> JSONResponse:
        if body.set is not None:
            runtime.clock.set(body.set)
        elif body.advance_seconds is not None:
            runtime.clock.advance(body.advance_seconds)
        else:
            raise ApiError(422, "validation_error", "give advance_seconds or set")
        # Workers of this deployment in other processes follow through the data directory.
        share_test_clock(runtime)
        return JSONResponse(
            {"now": runtime.clock.now().isoformat(), "offset_seconds": runtime.clock.offset_seconds}
        )
