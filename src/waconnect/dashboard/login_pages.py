"""``/login`` and ``/logout``."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard import users
from waconnect.dashboard.auth import (
    LOGIN_COOKIE,
    Dashboard,
    LoginRequired,
    checked_form,
    clear_session_cookie,
    login_token_matches,
    session_token,
    set_login_cookie,
    set_session_cookie,
    signed_in,
)
from waconnect.dashboard.errors import error_page
from waconnect.dashboard.render import page, secure
from waconnect.web.deps import RuntimeDep, SessionDep

router = APIRouter(include_in_schema=False)

_NOTICES = {
    "expired": "Your session has expired. Log in again to continue.",
    "unknown": "Your session has ended. Log in again to continue.",
    "signed_out": "You have logged out.",
}


def safe_next(value: str | None) -> str:
    """Only a path on this site: a login link must not send anyone elsewhere afterwards."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ch <= " " for ch in value):  # browsers drop tabs and newlines: "/\t/evil.example"
        return "/"
    return value


def _login_page(
    request: Request,
    runtime: RuntimeDep,
    *,
    next_path: str,
    email: str = "",
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        {"next": next_path, "email": email, "notice": notice, "error": error, "token": token},
        status=status,
    )
    set_login_cookie(response, runtime, token)
    return response


@router.get("/login")
async def login_form(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    next: str | None = None,
    reason: str | None = None,
) -> Response:
    next_path = safe_next(next)
    try:
        await signed_in(request, session, runtime)
    except LoginRequired:
        return _login_page(request, runtime, next_path=next_path, notice=_NOTICES.get(reason or ""))
    return RedirectResponse(next_path, 303)  # signed in already


@router.post("/login")
async def login(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    form = await request.form()
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    next_path = safe_next(str(form.get("next") or "/"))
    if not login_token_matches(runtime, request, str(form.get("csrf_token") or "")):
        return error_page(
            request,
            403,
            "The login form was refused: it did not carry the security token of the login page.",
            hint="The login page may have been open for too long, or another site sent the "
            "form. Open the login page again and log in from there.",
            title="Form refused",
            links=[(f"/login?next={next_path}" if next_path != "/" else "/login", "Log in")],
        )
    user = await users.authenticate_user(session, runtime.clock, email, password)
    if user is None:
        return _login_page(
            request,
            runtime,
            next_path=next_path,
            email=email.strip(),
            error="Wrong email or password.",
            status=401,
        )
    previous = session_token(runtime, request)
    if previous:
        await users.end_session(session, previous)  # one browser, one session
    token = await users.start_session(
        session, runtime.clock, user, runtime.settings.session_max_age_seconds
    )
    await session.commit()
    response = RedirectResponse(next_path, 303)
    set_session_cookie(response, runtime, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return secure(response)


@router.post("/logout")
async def logout(
    request: Request,
    _context: Annotated[Dashboard, Depends(checked_form)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    token = session_token(runtime, request)
    if token:
        await users.end_session(session, token)
        await session.commit()
    response = RedirectResponse("/login?reason=signed_out", 303)
    clear_session_cookie(response)
    return secure(response)
