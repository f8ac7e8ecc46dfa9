"""``/api/v1/workspace`` and ``/api/v1/keys``."""

from __future__ import annotations

from fastapi import APIRouter

from waconnect.web.deps import ClockDep, PrincipalDep, SessionDep
from waconnect.workspaces import service
from waconnect.workspaces.models import Workspace
from waconnect.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    WorkspaceOut,
    WorkspaceSettingsPatch,
)

router = APIRouter(tags=["workspace"])


def _workspace_out(workspace: Workspace) -> WorkspaceOut:
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        settings=service.settings_of(workspace),
        created_at=workspace.created_at,
    )


@router.get("/workspace", response_model=WorkspaceOut)
async def get_workspace(principal: PrincipalDep, session: SessionDep) -> WorkspaceOut:
    return _workspace_out(await service.get_workspace(session, principal.workspace_id))


@router.patch("/workspace", response_model=WorkspaceOut)
async def patch_workspace(
    body: WorkspaceSettingsPatch, principal: PrincipalDep, session: SessionDep
) -> WorkspaceOut:
    workspace = await service.update_settings(session, principal.workspace_id, body)
    return _workspace_out(workspace)


@router.get("/keys", response_model=list[ApiKeyOut])
async def list_keys(principal: PrincipalDep, session: SessionDep) -> list[ApiKeyOut]:
    rows = await service.list_keys(session, principal.workspace_id)
    return [ApiKeyOut.model_validate(row, from_attributes=True) for row in rows]


@router.post("/keys", response_model=ApiKeyCreated, status_code=201)
async def create_key(
    body: ApiKeyCreate, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> ApiKeyCreated:
    row, key = await service.create_key(session, clock, principal.workspace_id, body.label)
    out = ApiKeyOut.model_validate(row, from_attributes=True)
    return ApiKeyCreated(**out.model_dump(), key=key)


@router.delete("/keys/{key_id}", response_model=ApiKeyOut)
async def revoke_key(
    key_id: int, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> ApiKeyOut:
    row = await service.revoke_key(session, clock, principal.workspace_id, key_id)
    return ApiKeyOut.model_validate(row, from_attributes=True)
