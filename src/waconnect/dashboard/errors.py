"""HTML error pages for the dashboard; the API keeps its JSON errors.

The API's handlers stay installed; each is wrapped so that a request from a browser page (a
dashboard path, an htmx call, or a navigation that asks for HTML) gets a page that says what
happened and what to do, and every other request gets the API's JSON exactly as before.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard.auth import CsrfRefused, LoginRequired, clear_session_cookie
from waconnect.dashboard.render import is_htmx, page, secure
from waconnect.web.errors import ApiError

log = logging.getLogger("waconnect.dashboard")

# Paths served as pages. Later pages (templates, profiles, ...) add their first segment here.
DASHBOARD_PATHS = [
    "/login",
    "/logout",
    "/connect",
    "/templates",
    "/profiles",
    "/segments",
    "/campaigns",
    "/journeys",
    "/messages",
    "/settings",
]
_MACHINE_PATHS = ("/api/", "/callbacks/", "/_test/", "/static/", "/openapi.json", "/healthz")

Handler = Callable[[Request, Exception], Awaitable[Response]]
# What Starlette keeps in ``app.exception_handlers``: sync or async.
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]

_TITLES = {
    400: "This request could not be read",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Not available this way",
    409: "That clashes with something that exists",
    413: "That is too large",
    422: "Please check what you entered",
    429: "Too many requests",
    500: "Something went wrong on our side",
}


def is_dashboard_path(path: str) -> bool:
    return path == "/" or any(path == p or path.startswith(p + "/") for p in DASHBOARD_PATHS)


def wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(_MACHINE_PATHS):
        return False
    if is_dashboard_path(path) or is_htmx(request):
        return True
    return "text/html" in request.headers.get("accept", "")


def error_page(
    request: Request,
    status: int,
    message: str,
    hint: str | None = None,
    title: str | None = None,
    details: list[str] | None = None,
    links: list[tuple[str, str]] | None = None,
) -> Response:
    """A page that says what happened and offers the way on (``links``: href, label)."""
    return page(
        request,
        "error.html",
        {
            "status": status,
            "title": title or _TITLES.get(status, "Something went wrong"),
            "message": message,
            "hint": hint,
            "details": details or [],
            "links": links or [("/", "Go to the home page")],
            "partial": is_htmx(request),
        },
        status=status,
    )


# --- dashboard-only refusals --------------------------------------------------------------------


def _local_path(url: str | None) -> str:
    """The path of a URL of this site (for "log in and come back"), else the home page."""
    if not url:
        return "/"
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return "/"
    return path + (f"?{parts.query}" if parts.query else "")


def login_url(reason: str, next_path: str) -> str:
    query = {"next": next_path} if next_path != "/" else {}
    if reason in ("expired", "unknown"):
        query["reason"] = reason
    return "/login" + (f"?{urlencode(query)}" if query else "")


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if is_htmx(request):
        target = login_url(exc.reason, _local_path(request.headers.get("hx-current-url")))
        response: Response = Response(status_code=401, headers={"HX-Redirect": target})
    elif request.method in ("GET", "HEAD"):
        response = RedirectResponse(login_url(exc.reason, _local_path(str(request.url))), 303)
    else:
        # A form sent after the session ended: say so instead of silently dropping it.
        target = login_url(exc.reason, _local_path(request.headers.get("referer")))
        expired = exc.reason == "expired"
        response = error_page(
            request,
            401,
            "Your session has expired, so this form was not saved."
            if expired
            else "You are not logged in, so this form was not saved.",
            hint="Log in again, then repeat what you were doing.",
            title="Your session has expired" if expired else "Please log in",
            links=[(target, "Log in again")],
        )
    if exc.reason != "none":
        clear_session_cookie(response)
    return secure(response)


async def _csrf_refused(request: Request, _exc: Exception) -> Response:
    return error_page(
        request,
        403,
        "This form was refused: it did not carry the security token of the page it came from.",
        hint="This happens when a page was open for a long time, after logging in again "
        "elsewhere, or when another site tried to send it. Reload the page and try again.",
        title="Form refused",
        links=[(_local_path(request.headers.get("referer")), "Back to the page")],
    )


# --- the API's errors, as pages -----------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    hint = None
    if exc.status == 404:
        hint = "It may have been deleted, or it belongs to another workspace."
    details = [f"{name}: {why}" for name, why in (exc.fields or {}).items()]
    message = exc.message[:1].upper() + exc.message[1:]
    links = [("/", "Go to the home page")]
    if exc.status != 404 and request.headers.get("referer"):
        links.insert(0, (_local_path(request.headers.get("referer")), "Back to the page"))
    return error_page(request, exc.status, message + ".", hint=hint, details=details, links=links)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(tuple(err.get("loc", ()))[:1] == ("path",) for err in errors):
        # /connect/abc: a link to something that cannot exist.
        return error_page(request, 404, "There is no such page: the address is not valid.")
    details = [f"{'.'.join(map(str, err.get('loc', ())[1:]))}: {err.get('msg')}" for err in errors]
    return error_page(request, 422, "Some values in the request are not valid.", details=details)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message = "There is no page at this address."
    elif status == 405:
        message = "This page cannot be used with that kind of request."
    else:
        message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    return error_page(request, status, message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(
        request,
        500,
        "The page could not be shown. The error was logged on the server.",
        hint="Try again in a moment; if it keeps happening, tell whoever runs waconnect.",
    )


def _either(html: Handler, json: AnyHandler | None) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if json is None or wants_html(request):
            return await html(request, exc)
        answer = json(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handler


def install_html_errors(app: FastAPI) -> None:
    """Call after the API's handlers are installed: wraps them, keeping their JSON for the API."""
    pairs: list[tuple[type[Exception], Handler]] = [
        (ApiError, _api_error),
        (RequestValidationError, _validation),
        (StarletteHTTPException, _http),
        (Exception, _unexpected),
    ]
    for exc_class, html in pairs:
        app.add_exception_handler(exc_class, _either(html, app.exception_handlers.get(exc_class)))
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
