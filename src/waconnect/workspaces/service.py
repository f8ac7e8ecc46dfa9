"""Workspaces, their settings, and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.clock import Clock
from waconnect.db.base import is_storable_id
from waconnect.web.errors import ApiError, conflict, invalid_from, not_found
from waconnect.workspaces.models import ApiKey, Workspace
from waconnect.workspaces.schemas import WorkspaceSettings, WorkspaceSettingsPatch

DEFAULT_WORKSPACE = "default"
KEY_PREFIX = "wac_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: every API call is scoped to this workspace."""

    workspace_id: int
    key_id: int | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def settings_of(workspace: Workspace) -> WorkspaceSettings:
    return WorkspaceSettings.model_validate(workspace.settings or {})


async def ensure_default_workspace(session: AsyncSession, clock: Clock) -> Workspace:
    found = await session.scalar(select(Workspace).where(Workspace.name == DEFAULT_WORKSPACE))
    if found:
        return found
    try:
        return await create_workspace(session, clock, DEFAULT_WORKSPACE)
    except ApiError:
        # Another process (a second server, a CLI command) made it at the same moment.
        found = await session.scalar(select(Workspace).where(Workspace.name == DEFAULT_WORKSPACE))
        if found is None:
            raise
        return found


async def create_workspace(session: AsyncSession, clock: Clock, name: str) -> Workspace:
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiError(422, "validation_error", "a workspace name is 1 to 100 characters")
    workspace = Workspace(
        name=name, settings=WorkspaceSettings().model_dump(mode="json"), created_at=clock.now()
    )
    session.add(workspace)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise conflict(f"a workspace named {name!r} exists already") from exc
    return workspace


async def workspace_by_name(session: AsyncSession, name: str) -> Workspace:
    found = await session.scalar(select(Workspace).where(Workspace.name == name))
    if found is None:
        raise not_found(f"workspace {name!r}")
    return found


async def get_workspace(session: AsyncSession, workspace_id: int) -> Workspace:
    found = await session.get(Workspace, workspace_id)
    if found is None:
        raise not_found("workspace")
    return found


async def update_settings(
    session: AsyncSession, workspace_id: int, patch: WorkspaceSettingsPatch
) -> Workspace:
    workspace = await get_workspace(session, workspace_id)
    merged: dict[str, Any] = dict(workspace.settings or {})
    merged.update(patch.model_dump(mode="json", exclude_unset=True))
    # Re-validate the whole document: a patch must leave consistent settings behind.
    try:
        checked = WorkspaceSettings.model_validate(merged)
    except ValidationError as exc:  # a bad country, time zone, range, or a null
        raise invalid_from(exc) from None
    workspace.settings = checked.model_dump(mode="json")
    await session.flush()
    return workspace


async def create_key(
    session: AsyncSession, clock: Clock, workspace_id: int, label: str = ""
) -> tuple[ApiKey, str]:
    """Returns the row and the key; the key is never stored, only its hash."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits of randomness
    row = ApiKey(
        workspace_id=workspace_id,
        label=label,
        prefix=key[:12],
        key_hash=hash_key(key),
        created_at=clock.now(),
    )
    session.add(row)
    await session.flush()
    return row, key


async def list_keys(session: AsyncSession, workspace_id: int) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id)
    )
    return list(rows)


async def revoke_key(session: AsyncSession, clock: Clock, workspace_id: int, key_id: int) -> ApiKey:
    row = await session.get(ApiKey, key_id) if is_storable_id(key_id) else None
    if row is None or row.workspace_id != workspace_id:
        raise not_found("API key")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        await session.flush()
    return row


async def authenticate(session: AsyncSession, clock: Clock, key: str) -> Principal | None:
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    now = clock.now()
    # Recording use once a minute is enough for "last used", and spares a write per call.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        await session.commit()
    return Principal(workspace_id=row.workspace_id, key_id=row.id)
