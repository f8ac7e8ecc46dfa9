"""``/api/v1/providers/{id}/templates`` (+ ``/import``) and ``/api/v1/templates/{id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from waconnect.templates import importer, sending, service
from waconnect.templates.schemas import (
    ImportReport,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TemplatePreviewIn,
    TemplatePreviewOut,
    TestSendIn,
    TestSendOut,
)
from waconnect.web.deps import ClockDep, PrincipalDep, RuntimeDep, SessionDep

router = APIRouter(tags=["templates"])

Force = Annotated[
    bool,
    Query(description="change or delete it even when a scheduled or running campaign uses it"),
]


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


@router.post("/providers/{provider_id}/templates/import", response_model=ImportReport)
async def import_templates(
    provider_id: int, principal: PrincipalDep, runtime: RuntimeDep
) -> ImportReport:
    """Pull the provider's templates (msg91: its template list; generic: the configured import
    URL) and upsert them; every template is reported, rejected ones with their violations."""
    return await importer.import_templates(runtime, principal.workspace_id, provider_id)


@router.get("/templates/{template_id}", response_model=TemplateOut)
async def get_template(
    template_id: int, principal: PrincipalDep, session: SessionDep
) -> TemplateOut:
    return service.to_out(await service.get_template(session, principal.workspace_id, template_id))


@router.patch("/templates/{template_id}", response_model=TemplateOut)
async def update_template(
    template_id: int,
    body: TemplatePatch,
    principal: PrincipalDep,
    session: SessionDep,
    clock: ClockDep,
    force: Force = False,
) -> TemplateOut:
    template = await service.update_template(
        session, clock, principal.workspace_id, template_id, body, force
    )
    return service.to_out(template)


@router.delete("/templates/{template_id}", status_code=204)
async def delete_template(
    template_id: int, principal: PrincipalDep, session: SessionDep, force: Force = False
) -> Response:
    await service.delete_template(session, principal.workspace_id, template_id, force)
    return Response(status_code=204)


_TEST_SEND_DOC = """Send the template to up to 10 phones or profiles at the outbox's top priority
and
wait up to 5 s for the provider's answers: 200 with, per recipient, the message id, the exact
request (secrets masked), the provider's HTTP status and body, and success or the failure
reason; 202 with the same shape (``complete: false``) when some answers are still out —
``GET /api/v1/messages/{id}`` then shows them and the later statuses."""


@router.post(
    "/templates/{template_id}/test",
    response_model=TestSendOut,
    responses={202: {"model": TestSendOut, "description": "some answers are still out"}},
    description=_TEST_SEND_DOC,
)
async def test_send(
    template_id: int,
    body: TestSendIn,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    response: Response,
) -> TestSendOut:
    result = await sending.send_test(runtime, principal.workspace_id, template_id, body)
    response.status_code = 200 if result.complete else 202
    return result


@router.post(
    "/providers/{provider_id}/templates/{template_id}/test",
    response_model=TestSendOut,
    responses={202: {"model": TestSendOut, "description": "some answers are still out"}},
    description="The test send of a template picked on a provider config. " + _TEST_SEND_DOC,
)
async def provider_test_send(
    provider_id: int,
    template_id: int,
    body: TestSendIn,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    response: Response,
) -> TestSendOut:
    result = await sending.send_test(
        runtime, principal.workspace_id, template_id, body, provider_id=provider_id
    )
    response.status_code = 200 if result.complete else 202
    return result


@router.post("/templates/{template_id}/preview", response_model=TemplatePreviewOut)
async def preview_template(
    template_id: int, body: TemplatePreviewIn, principal: PrincipalDep, runtime: RuntimeDep
) -> TemplatePreviewOut:
    """The template as one recipient will see it (plain text), its WhatsApp send components,
    and the request its provider kind would get; nothing is sent."""
    return await sending.preview(runtime, principal.workspace_id, template_id, body)
