"""Who is signed in, and whether a form really came from our own page.

The session cookie carries a random token sealed with the deployment's secret key (Fernet:
encrypted and authenticated, so a forged or altered cookie is refused before any lookup). The
token names a server-side session; CSRF tokens live in that session and come back with every
form POST, as the hidden field ``csrf_token`` or the ``X-CSRF-Token`` header that htmx sends.
Before login there is no session, so the login form uses a sealed double-submit cookie instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Response

from waconnect.dashboard import users
from waconnect.dashboard.users import SignedIn
from waconnect.runtime import Runtime
from waconnect.web.deps import RuntimeDep, SessionDep
from waconnect.workspaces.schemas import WorkspaceSettings
from waconnect.workspaces.service import get_workspace, settings_of

SESSION_COOKIE = "wac_session"
LOGIN_COOKIE = "wac_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SCOPE_KEY = "waconnect.dashboard"

Reason = Literal["none", "expired", "unknown"]


class LoginRequired(Exception):
    """No usable session: never signed in (``none``), ``expired``, or ended/forged (``unknown``)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfRefused(Exception):
    """A form POST without the token of the page it came from."""


# --- sealed cookie values -----------------------------------------------------------------------


def seal(runtime: Runtime, purpose: str, value: str) -> str:
    # The purpose prefix keeps a value sealed for one use from being accepted for another.
    return runtime.secrets.encrypt(f"{purpose}:{value}")


def unseal(runtime: Runtime, purpose: str, sealed: str | None) -> str | None:
    if not sealed:
        return None
    try:
        plain = runtime.secrets.decrypt(sealed)
    except ValueError:  # altered, forged, or sealed with another deployment's key
        return None
    head, _, value = plain.partition(":")
    return value if head == purpose and value else None


def _secure(runtime: Runtime) -> bool:
    return runtime.settings.resolved_public_url.startswith("https://")


def set_session_cookie(response: Response, runtime: Runtime, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        seal(runtime, "session", token),
        max_age=runtime.settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(runtime),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def set_login_cookie(response: Response, runtime: Runtime, token: str) -> None:
    """The sealed twin of the login form's token (double submit: a cross-site form has neither)."""
    response.set_cookie(
        LOGIN_COOKIE,
        seal(runtime, "login", token),
        httponly=True,
        samesite="lax",
        secure=_secure(runtime),
        path="/login",
    )


def login_token_matches(runtime: Runtime, request: Request, sent: str | None) -> bool:
    expected = unseal(runtime, "login", request.cookies.get(LOGIN_COOKIE))
    return _same(sent, expected)


def _same(sent: str | None, expected: str | None) -> bool:
    if not sent or not expected:
        return False
    return secrets.compare_digest(sent.encode(), expected.encode())


def session_token(runtime: Runtime, request: Request) -> str | None:
    return unseal(runtime, "session", request.cookies.get(SESSION_COOKIE))


# --- dependencies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    """What every dashboard page needs: the user, their workspace and its settings."""

    user: SignedIn
    workspace_id: int
    # Plain values, not the ORM row: a page that rolls back a failed save still renders them.
    workspace_name: str
    settings: WorkspaceSettings

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)


async def signed_in(request: Request, session: SessionDep, runtime: RuntimeDep) -> SignedIn:
    sealed = request.cookies.get(SESSION_COOKIE)
    if not sealed:
        raise LoginRequired("none")
    token = unseal(runtime, "session", sealed)
    if token is None:
        raise LoginRequired("unknown")
    found = await users.resume_session(session, runtime.clock, token)
    if isinstance(found, str):
        await session.commit()  # keep the removal of an expired session
        raise LoginRequired(found)
    return found


async def dashboard(
    request: Request, user: Annotated[SignedIn, Depends(signed_in)], session: SessionDep
) -> Dashboard:
    workspace = await get_workspace(session, user.workspace_id)
    context = Dashboard(
        user=user,
        workspace_id=workspace.id,
        workspace_name=workspace.name,
        settings=settings_of(workspace),
    )
    # The page layout shows the user and the workspace. Kept in the request's own scope, not
    # request.state, which some servers share between requests (lifespan state).
    request.scope[SCOPE_KEY] = context
    return context


async def checked_form(
    request: Request, context: Annotated[Dashboard, Depends(dashboard)]
) -> Dashboard:
    """``dashboard`` for a POST: refuses it unless it carries this session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not _same(sent, context.user.csrf_token):
        raise CsrfRefused()
    return context


DashboardDep = Annotated[Dashboard, Depends(dashboard)]
FormDep = Annotated[Dashboard, Depends(checked_form)]
