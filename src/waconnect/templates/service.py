"""The template store: per provider config, (name, language) unique."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.clock import Clock
from waconnect.providers.service import get_provider
from waconnect.templates.models import Template
from waconnect.templates.schemas import TemplateIn, TemplateOut
from waconnect.web.errors import ApiError, not_found

_OWN_FIELDS = {"status", "provider_template_id", "namespace"}


def _definition(body: TemplateIn) -> dict[str, Any]:
    data = body.model_dump(mode="json", exclude=_OWN_FIELDS, exclude_none=True)
    data["components"] = [component.model_dump(mode="json") for component in body.components]
    return data


def to_out(template: Template) -> TemplateOut:
    definition = dict(template.definition)
    definition.update(
        id=template.id,
        provider_id=template.provider_id,
        name=template.name,
        language=template.language,
        category=template.category,
        status=template.status,
        provider_template_id=template.provider_template_id,
        namespace=template.namespace,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )
    return TemplateOut.model_validate(definition)


async def create_template(
    session: AsyncSession, clock: Clock, workspace_id: int, provider_id: int, body: TemplateIn
) -> Template:
    await get_provider(session, workspace_id, provider_id)
    now = clock.now()
    template = Template(
        workspace_id=workspace_id,
        provider_id=provider_id,
        name=body.name,
        language=body.language,
        category=body.category,
        status=body.status,
        definition=_definition(body),
        provider_template_id=body.provider_template_id,
        namespace=body.namespace,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        existing = await find_template(session, provider_id, body.name, body.language)
        raise ApiError(
            409,
            "conflict",
            f"template {body.name!r} in language {body.language!r} exists already on this "
            f"provider (id {existing.id if existing else '?'})",
            extra={"existing_id": existing.id if existing else None},
        ) from exc
    return template


async def find_template(
    session: AsyncSession, provider_id: int, name: str, language: str
) -> Template | None:
    return await session.scalar(
        select(Template).where(
            Template.provider_id == provider_id,
            Template.name == name,
            Template.language == language,
        )
    )


async def list_templates(
    session: AsyncSession, workspace_id: int, provider_id: int
) -> list[Template]:
    await get_provider(session, workspace_id, provider_id)
    rows = await session.scalars(
        select(Template).where(Template.provider_id == provider_id).order_by(Template.id)
    )
    return list(rows)


async def get_template(session: AsyncSession, workspace_id: int, template_id: int) -> Template:
    template = await session.get(Template, template_id)
    if template is None or template.workspace_id != workspace_id:
        raise not_found(f"template {template_id}")
    return template


async def delete_template(session: AsyncSession, workspace_id: int, template_id: int) -> None:
    template = await get_template(session, workspace_id, template_id)
    await session.delete(template)
    await session.flush()
