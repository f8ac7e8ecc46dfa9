"""Logging in and posting forms the way a browser does, for the in-process dashboard tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

from waconnect.dashboard import users
from waconnect.runtime import Runtime
from waconnect.workspaces import service as workspaces

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_FIELD_ERROR = re.compile(
    r'id="(f-[\w-]+)-error"><span class="visually-hidden">Error: </span>(.*?)</p>'
)


async def add_user(
    runtime: Runtime, email: str, workspace: str = "default", password: str = PASSWORD
) -> None:
    async with runtime.sessions() as session:
        try:
            found = await workspaces.workspace_by_name(session, workspace)
        except Exception:
            found = await workspaces.create_workspace(session, runtime.clock, workspace)
        await users.create_user(session, runtime.clock, found.id, email, password)
        await session.commit()


def csrf_token(page: httpx.Response) -> str:
    match = _TOKEN.search(page.text)
    assert match, page.text[:2000]
    return match.group(1)


async def log_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = "/"
) -> httpx.Response:
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_token(form),
            "next": next_path,
        },
    )


async def signed_in(client: httpx.AsyncClient, runtime: Runtime, email: str) -> str:
    """Make the user, log in; returns the session's CSRF token (from the home page)."""
    await add_user(runtime, email)
    answer = await log_in(client, email)
    assert answer.status_code == 303, answer.text
    return csrf_token(await client.get("/settings"))


def field_errors(page: httpx.Response) -> dict[str, str]:
    """Inline errors by field id (``f-nickname``), as the page shows them."""
    return {field: why for field, why in _FIELD_ERROR.findall(page.text)}


def assert_page(answer: httpx.Response, status: int, *says: str) -> str:
    """An HTML page (never JSON, never a trace) with ``status`` that says each of ``says``."""
    assert answer.status_code == status, f"{answer.status_code}: {answer.text[:1500]}"
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    text = answer.text
    assert "Traceback" not in text and text.lstrip().startswith("<"), text[:500]
    for phrase in says:
        assert phrase in text, f"{phrase!r} not in page:\n{text[:3000]}"
    return text


def form_body(**fields: Any) -> dict[str, Any]:
    """Form field names use dots (``auth.type``); pass them with ``__`` for dots here."""
    return {name.replace("__", "."): value for name, value in fields.items()}
