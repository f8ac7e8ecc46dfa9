"""``/api/v1/providers/{id}/templates`` and ``/api/v1/templates/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from waconnect.templates import service
from waconnect.templates.schemas import TemplateIn, TemplateOut
from waconnect.web.deps import ClockDep, PrincipalDep, SessionDep

router = APIRouter(tags=["templates"])


@router.post("/providers/{provider_id}/templates", response_model=TemplateOut, status_code=201)
async def create_template(
    provider_id: int,
    body: TemplateIn,
    principal: PrincipalDep,
    session: SessionDep,
    clock: ClockDep,
) -> TemplateOut:
    template = await service.create_template(
        session, clock, principal.workspace_id, provider_id, body
    )
    return service.to_out(template)


@router.get("/providers/{provider_id}/templates", response_model=list[TemplateOut])
async def list_templates(
    provider_id: int, principal: PrincipalDep, session: SessionDep
) -> list[TemplateOut]:
    rows = await service.list_templates(session, principal.workspace_id, provider_id)
    return [service.to_out(row) for row in rows]


@router.get("/templates/{template_id}", response_model=TemplateOut)
async def get_template(
    template_id: int, principal: PrincipalDep, session: SessionDep
) -> TemplateOut:
    return service.to_out(await service.get_template(session, principal.workspace_id, template_id))


@router.delete("/templates/{template_id}", status_code=204)
async def delete_template(
    template_id: int, principal: PrincipalDep, session: SessionDep
) -> Response:
    await service.delete_template(session, principal.workspace_id, template_id)
    return Response(status_code=204)
