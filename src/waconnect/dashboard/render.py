"""Rendering pages: one Jinja2 environment, the layout's navigation, and safe response headers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from waconnect.dashboard.auth import SCOPE_KEY
from waconnect.dashboard.forms import FIELD_LABELS, field_id
from waconnect.messaging.states import Status

TEMPLATES = Path(__file__).parent.parent / "web" / "templates"

# The layout's menu: (path, label). Pages of later capabilities add their entry here.
NAV: list[tuple[str, str]] = [
    ("/", "Home"),
    ("/connect", "WhatsApp Connect"),
    ("/templates", "Templates"),
    ("/profiles", "Profiles"),
    ("/segments", "Segments"),
    ("/campaigns", "Campaigns"),
    ("/journeys", "Journeys"),
    ("/messages", "Messages"),
    ("/settings", "Settings"),
]

# Our own script and styles only: no inline script can run, even if some text slipped through.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show workspace data: never keep them in a cache (nor show them after logout via Back).
    "Cache-Control": "no-store",
}


def when(moment: datetime | None, tz: ZoneInfo | None = None) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(tz) if tz else moment
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")


def pretty(value: Any) -> str:
    """JSON as people read it; a body that is not JSON comes back as it was."""
    if value is None:
        return ""
    if isinstance(value, bytes | str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def label_of(name: str) -> str:
    """What a field is called on its page; rows of a table are named by their number."""
    head, _, index = name.partition(".")
    if index.isdigit():
        row = {"buttons": "Button", "cond": "Condition"}.get(head)
        if row:
            return f"{row} {int(index) + 1}"
    return FIELD_LABELS.get(name, name)


def nav_active(path: str, href: str) -> bool:
    return path == "/" if href == "/" else path == href or path.startswith(href + "/")


templates = Jinja2Templates(directory=TEMPLATES)
templates.env.filters["when"] = when
templates.env.filters["pretty"] = pretty
templates.env.globals.update(
    NAV=NAV,
    nav_active=nav_active,
    STATUSES=[s.value for s in Status],
    LABELS=FIELD_LABELS,
    label_of=label_of,
    fid=field_id,
)


def secure(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render ``name`` with the signed-in user's layout (when there is one)."""
    dash = request.scope.get(SCOPE_KEY)
    values: dict[str, Any] = {
        "dash": dash,
        "tz": dash.tz if dash else None,
        "csrf_token": dash.user.csrf_token if dash else "",
        "path": request.url.path,
    }
    values.update(context or {})
    response = templates.TemplateResponse(
        request, name, values, status_code=status, headers=headers
    )
    return secure(response)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
