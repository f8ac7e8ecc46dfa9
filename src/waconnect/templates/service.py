"""The template store: per provider config, (name, language) unique, every template valid.

A template is kept as WhatsApp's own definition (normalized: enum values upper case) plus our
columns: status, the provider's template id and namespace. Its type is not stored: it follows
from the components and category (``validation.template_type``), so it can never disagree
with them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.clock import Clock
from waconnect.db.base import is_storable_id
from waconnect.providers.service import get_provider
from waconnect.templates.models import Template
from waconnect.templates.schemas import OWN_FIELDS, TemplateIn, TemplateOut, TemplatePatch
from waconnect.templates.validation import normalized, template_type, validate_template
from waconnect.web.errors import ApiError, conflict, invalid, not_found

# Fields a template cannot do without; a PATCH may change them but not clear them.
_REQUIRED = ("name", "language", "category", "components", "status")


# --- shapes -------------------------------------------------------------------------------------


def definition_of(data: dict[str, Any]) -> dict[str, Any]:
    """The WhatsApp definition in ``data`` (our own fields left out), normalized."""
    return normalized({key: value for key, value in data.items() if key not in OWN_FIELDS})


def to_out(template: Template) -> TemplateOut:
    definition = dict(template.definition)
    definition.update(
        id=template.id,
        provider_id=template.provider_id,
        name=template.name,
        language=template.language,
        category=template.category,
        type=template_type({**definition, "category": template.category}),
        status=template.status,
        provider_template_id=template.provider_template_id,
        namespace=template.namespace,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )
    return TemplateOut.model_validate(definition)


def check_template(data: dict[str, Any], also: dict[str, str] | None = None) -> None:
    """Raise one 422 naming every rule ``data`` breaks (plus ``also``), or return."""
    fields = {**validate_template(data), **(also or {})}
    if fields:
        count = len(fields)
        summary = "; ".join(f"{path}: {why}" for path, why in fields.items())
        raise invalid(
            fields,
            f"the template breaks {count} WhatsApp rule{'s' if count > 1 else ''}: {summary}",
        )


def _duplicate(name: str, language: str, existing: Template | None) -> ApiError:
    where = f" (id {existing.id})" if existing is not None else ""
    return conflict(
        f"template {name!r} in language {language!r} exists already on this provider{where}",
        existing_id=existing.id if existing is not None else None,
    )


# --- the campaigns' hook ------------------------------------------------------------------------


# Capabilities that send templates on their own (campaigns, journeys) register a check; each
# answers with what uses the template ("campaign 'Diwali' (running)") or None.
InUseCheck = Callable[[AsyncSession, int], Awaitable[str | None]]
_in_use_checks: list[InUseCheck] = []


def add_in_use_check(check: InUseCheck) -> None:
    if check not in _in_use_checks:
        _in_use_checks.append(check)


async def template_in_use(session: AsyncSession, template_id: int) -> str | None:
    """What scheduled or running campaign or live journey sends this template, if any.

    Editing or deleting such a template answers 409 unless ``force`` is given.
    """
    for check in _in_use_checks:
        user = await check(session, template_id)
        if user is not None:
            return user
    return None


async def _guard_in_use(session: AsyncSession, template: Template, force: bool) -> None:
    if force:
        return
    user = await template_in_use(session, template.id)
    if user is not None:
        raise conflict(
            f"template {template.name!r} ({template.language}) is used by {user}; "
            "stop it first, or repeat with ?force=true",
            template_id=template.id,
        )


# --- create, read, change, delete ---------------------------------------------------------------


async def create_template(
    session: AsyncSession, clock: Clock, workspace_id: int, provider_id: int, body: TemplateIn
) -> Template:
    await get_provider(session, workspace_id, provider_id)
    data = body.model_dump(mode="json", exclude_none=True)
    check_template(data)
    definition = definition_of(data)
    existing = await find_template(session, provider_id, definition["name"], definition["language"])
    if existing is not None:
        raise _duplicate(definition["name"], definition["language"], existing)
    now = clock.now()
    template = Template(
        workspace_id=workspace_id,
        provider_id=provider_id,
        name=definition["name"],
        language=definition["language"],
        category=definition["category"],
        status=str(data["status"]).upper(),
        definition=definition,
        provider_template_id=body.provider_template_id,
        namespace=body.namespace,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    await _flush_unique(session, template)
    return template


async def _flush_unique(session: AsyncSession, template: Template) -> None:
    """Flush; a (name, language) taken meanwhile by another request is the same 409."""
    name, language, provider_id = template.name, template.language, template.provider_id
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        existing = await find_template(session, provider_id, name, language)
        raise _duplicate(name, language, existing) from exc


async def update_template(
    session: AsyncSession,
    clock: Clock,
    workspace_id: int,
    template_id: int,
    patch: TemplatePatch,
    force: bool = False,
) -> Template:
    """Apply ``patch`` and validate the result as a whole template."""
    template = await get_template(session, workspace_id, template_id)
    await _guard_in_use(session, template, force)
    data = _current(template)
    changes = patch.model_dump(mode="json", include=patch.model_fields_set)
    changes.update(patch.model_extra or {})
    nulls = {
        key: "must not be null" for key in _REQUIRED if key in changes and changes[key] is None
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    check_template(data, nulls)
    definition = definition_of(data)
    name, language = definition["name"], definition["language"]
    if (name, language) != (template.name, template.language):
        existing = await find_template(session, template.provider_id, name, language)
        if existing is not None and existing.id != template.id:
            raise _duplicate(name, language, existing)
    template.name, template.language = name, language
    template.category = definition["category"]
    template.status = str(data["status"]).upper()
    template.definition = definition
    template.provider_template_id = data.get("provider_template_id")
    template.namespace = data.get("namespace")
    template.updated_at = clock.now()
    await _flush_unique(session, template)
    return template


def _current(template: Template) -> dict[str, Any]:
    data = dict(template.definition)
    data.update(
        name=template.name,
        language=template.language,
        category=template.category,
        status=template.status,
    )
    for key in ("provider_template_id", "namespace"):
        if getattr(template, key) is not None:
            data[key] = getattr(template, key)
    return data


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
    template = await session.get(Template, template_id) if is_storable_id(template_id) else None
    if template is None or template.workspace_id != workspace_id:
        raise not_found(f"template {template_id}")
    return template


async def delete_template(
    session: AsyncSession, workspace_id: int, template_id: int, force: bool = False
) -> None:
    template = await get_template(session, workspace_id, template_id)
    await _guard_in_use(session, template, force)
    await session.delete(template)
    await session.flush()
