"""Settings: API keys (create — shown once — and revoke), users, and workspace defaults."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard import users
from waconnect.dashboard.auth import Dashboard, DashboardDep, FormDep
from waconnect.dashboard.forms import Errors, SettingsForm, errors_of
from waconnect.dashboard.render import page
from waconnect.web.deps import ClockDep, SessionDep
from waconnect.web.errors import ApiError
from waconnect.workspaces import service
from waconnect.workspaces.schemas import (
    ApiKeyCreate,
    WorkspaceSettings,
    WorkspaceSettingsPatch,
)

router = APIRouter(prefix="/settings", include_in_schema=False)

_DONE = {
    "saved": "The workspace settings were saved.",
    "revoked": "The API key was revoked: calls with it are refused from now on.",
    "user": "The user was added: they can log in with that email and password now.",
}
COMMON_TIMEZONES = [
    "Asia/Kolkata",
    "Asia/Dubai",
    "Asia/Singapore",
    "Asia/Jakarta",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Africa/Lagos",
    "UTC",
]


async def _settings_page(
    request: Request,
    context: Dashboard,
    session: SessionDep,
    *,
    form: SettingsForm | None = None,
    errors: Errors | None = None,
    key_errors: Errors | None = None,
    user_errors: Errors | None = None,
    user_email: str = "",
    new_key: str | None = None,
    status: int = 200,
) -> Response:
    values: dict[str, Any] = {
        "form": form or SettingsForm.from_settings(context.settings),
        "errors": errors or {},
        "key_errors": key_errors or {},
        "user_errors": user_errors or {},
        "user_email": user_email,
        "keys": await service.list_keys(session, context.workspace_id),
        "users": await users.list_users(session, context.workspace_id),
        "new_key": new_key,
        "timezones": COMMON_TIMEZONES,
        "done": _DONE.get(request.query_params.get("done", "")),
    }
    return page(request, "settings/page.html", values, status=status)


@router.get("")
async def settings_page(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    return await _settings_page(request, context, session)


@router.post("/workspace")
async def save_settings(request: Request, context: FormDep, session: SessionDep) -> Response:
    form = SettingsForm.from_request(await request.form())
    payload = form.payload()
    try:
        # The whole document first, so every wrong field is reported at once; the service
        # checks it again after merging.
        WorkspaceSettings.model_validate({**context.settings.model_dump(mode="json"), **payload})
        patch = WorkspaceSettingsPatch.model_validate(payload)
        await service.update_settings(session, context.workspace_id, patch)
    except (ValidationError, ApiError) as exc:
        await session.rollback()
        return await _settings_page(
            request, context, session, form=form, errors=errors_of(exc), status=422
        )
    await session.commit()
    return RedirectResponse("/settings?done=saved#workspace", 303)


@router.post("/keys")
async def create_key(
    request: Request, context: FormDep, session: SessionDep, clock: ClockDep
) -> Response:
    label = str((await request.form()).get("label") or "").strip()
    try:
        body = ApiKeyCreate.model_validate({"label": label})
    except ValidationError as exc:
        return await _settings_page(
            request, context, session, key_errors=errors_of(exc), status=422
        )
    _row, key = await service.create_key(session, clock, context.workspace_id, body.label)
    await session.commit()
    # Rendered, not redirected: the key must never travel in a URL, and is shown only this once.
    return await _settings_page(request, context, session, new_key=key)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(
    key_id: int, context: FormDep, session: SessionDep, clock: ClockDep
) -> Response:
    await service.revoke_key(session, clock, context.workspace_id, key_id)
    await session.commit()
    return RedirectResponse("/settings?done=revoked#keys", 303)


@router.post("/users")
async def add_user(
    request: Request, context: FormDep, session: SessionDep, clock: ClockDep
) -> Response:
    """Another user of this workspace, who logs in with the email and password given here."""
    form = await request.form()
    email = str(form.get("email") or "")
    password = str(form.get("password") or "")
    try:
        await users.create_user(session, clock, context.workspace_id, email, password)
    except ApiError as exc:
        await session.rollback()
        errors = {("email" if exc.status == 409 else k): v for k, v in errors_of(exc).items()}
        return await _settings_page(
            request, context, session, user_errors=errors, user_email=email, status=exc.status
        )
    await session.commit()
    return RedirectResponse("/settings?done=user#users", 303)
