"""The dashboard's routes, mounted at ``/`` beside ``/api/v1``, ``/callbacks`` and ``/docs``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from waconnect.dashboard import (
    campaigns_pages,
    connect_pages,
    home_page,
    journeys_pages,
    login_pages,
    messages_pages,
    profiles_pages,
    segments_pages,
    settings_pages,
    templates_pages,
)
from waconnect.dashboard.errors import install_html_errors


def dashboard_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    every = (
        login_pages,
        home_page,
        connect_pages,
        templates_pages,
        profiles_pages,
        segments_pages,
        campaigns_pages,
        journeys_pages,
        messages_pages,
        settings_pages,
    )
    for pages in every:
        router.include_router(pages.router)
    return router


def install_dashboard(app: FastAPI) -> None:
    """Add the pages, and HTML error pages for them (after the API's JSON handlers)."""
    app.include_router(dashboard_router())
    install_html_errors(app)
