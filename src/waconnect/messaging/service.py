"""Putting messages in the outbox, and reading them back with their whole story.

Everything that sends — the API, test sends, campaigns, journeys, auto-replies — inserts rows
here; only the dispatcher turns rows into requests.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging.journal import sqlite_time
from waconnect.messaging.models import Attempt, Contact, Message, MessageEvent
from waconnect.messaging.schemas import (
    AttemptOut,
    MessageDetail,
    MessageIn,
    MessageOut,
    MessagePage,
    TimelineEntry,
)
from waconnect.messaging.states import Status
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import default_provider, get_provider
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.templates.render import RenderError, render_template
from waconnect.web.errors import ApiError, not_found
from waconnect.workspaces.schemas import WorkspaceSettings
from waconnect.workspaces.service import get_workspace, settings_of

# Lower is claimed first (design.md: test sends and journeys before bulk campaigns).
PRIORITY_TEST = 0
PRIORITY_JOURNEY = 10
PRIORITY_API = 20
PRIORITY_BULK = 30


@dataclass(frozen=True)
class NewMessage:
    """A row to put in the outbox; built by whichever capability sends."""

    provider_id: int
    to_phone: str
    kind: str  # template | session
    content: dict[str, Any]
    template_id: int | None = None
    source: str = "api"
    priority: int = PRIORITY_API
    campaign_id: int | None = None
    held: bool = False
    # Campaigns pace and schedule their rows (throttle, DND hours, cut-off); None: now, and
    # the workspace's message expiry.
    next_attempt_at: datetime | None = None
    expires_at: datetime | None = None
    # When the sender already knows the phone's contact (campaigns read it with the
    # subscription), enqueue skips looking it up.
    contact_id: int | None = None


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _on_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


# On SQLite the outbox's inserts take all rows as one JSON array (json_each): SQLAlchemy's
# per-parameter processing of 20 columns a row cost more than the API's validation.
_SQLITE_NEW_CONTACTS = """
INSERT INTO contacts (workspace_id, phone, subscription, subscription_source, created_at)
SELECT ?1, value, ?2, 'default', ?3 FROM json_each(?4) WHERE true
ON CONFLICT (workspace_id, phone) DO NOTHING
"""
_SQLITE_CONTACT_IDS = """
SELECT phone, id FROM contacts
WHERE workspace_id = ?1 AND phone IN (SELECT value FROM json_each(?2))
"""
_MESSAGE_FIELDS = (
    "provider_id",
    "template_id",
    "contact_id",
    "to_phone",
    "kind",
    "content",
    "source",
    "priority",
    "held",
    "next_attempt_at",
    "expires_at",
    "campaign_id",
)
_SQLITE_NEW_MESSAGES = f"""
INSERT INTO messages (workspace_id, {", ".join(_MESSAGE_FIELDS)}, status, attempt_count,
    transient_failures, pending_attempt, replied_count, clicked_count, created_at, updated_at)
SELECT ?1, {", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(_MESSAGE_FIELDS)))},
    'queued', 0, 0, false, 0, 0, ?2, ?2
FROM json_each(?3) ORDER BY key
"""
# The INSERT's ids: SQLite gives each new row the largest rowid so far plus one, so the rows
# of one INSERT have consecutive ids in the array's order, the last one last_insert_rowid().
# (Read once, where RETURNING would hand back a row, and a statement step, per message.)
_SQLITE_INSERTED = "SELECT last_insert_rowid(), changes()"


async def contact_ids(
    session: AsyncSession,
    workspace_id: int,
    phones: Sequence[str],
    settings: WorkspaceSettings,
    now: Any,
) -> dict[str, int]:
    """The contact of each phone, made on first sight with the workspace's default subscription."""
    unique = sorted(set(phones))
    if not unique:
        return {}
    if _on_sqlite(session):
        connection = await session.connection()
        listed = orjson.dumps(unique).decode()
        subscription = settings.new_contact_subscription
        await connection.exec_driver_sql(
            _SQLITE_NEW_CONTACTS, (workspace_id, subscription, sqlite_time(now), listed)
        )
        found = await connection.exec_driver_sql(_SQLITE_CONTACT_IDS, (workspace_id, listed))
        pairs: list[Any] = list(found.all())
        return {phone: contact_id for phone, contact_id in pairs}
    insert = _insert(session)
    # executemany of one cached statement: far cheaper to compile than one huge VALUES list.
    await session.execute(
        insert(Contact.__table__).on_conflict_do_nothing(index_elements=["workspace_id", "phone"]),
        [
            {
                "workspace_id": workspace_id,
                "phone": phone,
                "subscription": settings.new_contact_subscription,
                "subscription_source": "default",
                "created_at": now,
            }
            for phone in unique
        ],
    )
    rows = await session.execute(
        select(Contact.phone, Contact.id).where(
            Contact.workspace_id == workspace_id, Contact.phone.in_(unique)
        )
    )
    return {phone: contact_id for phone, contact_id in rows.all()}


async def enqueue(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: int,
    rows: Sequence[NewMessage],
    settings: WorkspaceSettings | None = None,
) -> list[int]:
    """Insert rows as ``queued``; returns their ids in order. Commits nothing.

    ``settings``: the workspace's, when the caller has just read them."""
    if not rows:
        return []
    if settings is None:
        settings = settings_of(await get_workspace(session, workspace_id))
    now = runtime.clock.now()
    unknown = [r.to_phone for r in rows if r.contact_id is None]
    contacts = await contact_ids(session, workspace_id, unknown, settings, now)
    expires = now + timedelta(hours=settings.message_expiry_hours)
    if _on_sqlite(session):
        return await _enqueue_sqlite(session, workspace_id, rows, contacts, now, expires)
    values = [
        {
            "workspace_id": workspace_id,
            "provider_id": r.provider_id,
            "template_id": r.template_id,
            "contact_id": r.contact_id or contacts.get(r.to_phone),
            "to_phone": r.to_phone,
            "kind": r.kind,
            "content": r.content,
            "source": r.source,
            "status": Status.QUEUED,
            "priority": r.priority,
            "held": r.held,
            "next_attempt_at": r.next_attempt_at or now,
            "expires_at": r.expires_at or expires,
            "attempt_count": 0,
            "transient_failures": 0,
            "pending_attempt": False,
            "campaign_id": r.campaign_id,
            "replied_count": 0,
            "clicked_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    table = cast(Table, Message.__table__)
    # SQLAlchemy sends this as multi-row INSERTs (its "insertmanyvalues"), one statement per
    # page, pages in order. Ids are assigned in VALUES order within a statement and grow from
    # one statement to the next, so the ascending ids are the rows in the order given — and we
    # avoid sort_by_parameter_order, which SQLite can only honour row by row.
    result = await session.execute(table.insert().returning(table.c.id), values)
    return sorted(row[0] for row in result.all())


async def _enqueue_sqlite(
    session: AsyncSession,
    workspace_id: int,
    rows: Sequence[NewMessage],
    contacts: dict[str, int],
    now: datetime,
    expires: datetime,
) -> list[int]:
    connection = await session.connection()
    statement, values = sqlite_new_messages(workspace_id, rows, contacts, now, expires)
    await connection.exec_driver_sql(statement, values)
    inserted = (await connection.exec_driver_sql(_SQLITE_INSERTED)).one()
    last, count = cast(tuple[int, int], tuple(inserted))
    return inserted_ids(last, count)


def sqlite_insert_messages(
    connection: sqlite3.Connection, statement: tuple[str, tuple[Any, ...]]
) -> list[int]:
    """Run ``sqlite_new_messages``' INSERT on a driver connection; the new ids, in order."""
    connection.execute(*statement)
    last, count = connection.execute(_SQLITE_INSERTED).fetchone()
    return inserted_ids(last, count)


def inserted_ids(last: int, count: int) -> list[int]:
    return list(range(last - count + 1, last + 1))


def sqlite_new_messages(
    workspace_id: int,
    rows: Sequence[NewMessage],
    contacts: dict[str, int],
    now: datetime,
    expires: datetime,
) -> tuple[str, tuple[Any, ...]]:
    """One INSERT … SELECT over the rows as JSON (its ids: ``_SQLITE_INSERTED``), assigned in
    the array's order (ORDER BY key), so the ascending ids are the rows in the order given.
    ``contacts``: phone -> contact id, for rows that carry none; ``expires``: the default."""
    now_text, expires_text = sqlite_time(now), sqlite_time(expires)
    values = [
        (
            r.provider_id,
            r.template_id,
            r.contact_id or contacts.get(r.to_phone),
            r.to_phone,
            r.kind,
            orjson.dumps(r.content).decode(),
            r.source,
            r.priority,
            r.held,
            sqlite_time(r.next_attempt_at) if r.next_attempt_at else now_text,
            sqlite_time(r.expires_at) if r.expires_at else expires_text,
            r.campaign_id,
        )
        for r in rows
    ]
    return _SQLITE_NEW_MESSAGES, (workspace_id, now_text, orjson.dumps(values).decode())


def wake_dispatcher(runtime: Runtime) -> None:
    """Tell an in-process dispatcher that work is waiting (others poll)."""
    dispatcher = runtime.extras.get("dispatcher")
    if dispatcher is not None:
        dispatcher.wake()  # type: ignore[attr-defined]


# --- the API's template send --------------------------------------------------------------------


class _Lookup:
    """Resolves providers and templates once per call, for a batch of up to 1,000 messages."""

    def __init__(self, session: AsyncSession, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self._providers: dict[int | None, ProviderConfig] = {}
        self._templates: dict[tuple[int, str, str], Template | None] = {}
        self._definitions: dict[int, dict[str, Any]] = {}

    async def provider(self, provider_id: int | None) -> ProviderConfig:
        if provider_id not in self._providers:
            if provider_id is None:
                found = await default_provider(self.session, self.workspace_id)
                if found is None:
                    raise ApiError(
                        422,
                        "no_provider",
                        "this workspace has no provider config yet; create one under "
                        "/api/v1/providers or give provider_id",
                    )
            else:
                found = await get_provider(self.session, self.workspace_id, provider_id)
            self._providers[provider_id] = found
        return self._providers[provider_id]

    async def template(self, provider_id: int, name: str, language: str) -> Template | None:
        key = (provider_id, name, language)
        if key not in self._templates:
            self._templates[key] = await self.session.scalar(
                select(Template).where(
                    Template.provider_id == provider_id,
                    Template.name == name,
                    Template.language == language,
                )
            )
        return self._templates[key]

    def definition(self, template: Template) -> dict[str, Any]:
        """The stored definition with its identity, made once per template per call."""
        if template.id not in self._definitions:
            self._definitions[template.id] = template_definition(template)
        return self._definitions[template.id]


def template_definition(template: Template) -> dict[str, Any]:
    definition = dict(template.definition)
    definition.update(
        name=template.name,
        language=template.language,
        category=template.category,
        namespace=template.namespace,
    )
    return definition


async def prepare_template_send(
    lookup: _Lookup, body: MessageIn, settings: WorkspaceSettings, source: str, priority: int
) -> NewMessage:
    provider = await lookup.provider(body.provider_id)
    try:
        phone = normalize_phone(body.to, settings.default_country)
    except InvalidPhone as exc:
        raise ApiError(422, "validation_error", f"to: {exc}", fields={"to": str(exc)}) from exc
    name, language = body.template.name, body.template.language.code
    template = await lookup.template(provider.id, name, language)
    if template is None:
        raise ApiError(
            404,
            "template_not_found",
            f"no template {name!r} in language {language!r} on provider {provider.id} "
            f"({provider.nickname}); add it under /api/v1/providers/{provider.id}/templates",
        )
    if template.status != "APPROVED":
        raise ApiError(
            409,
            "template_not_approved",
            f"template {name!r} ({language}) is {template.status}; only APPROVED templates "
            "can be sent",
            extra={"template_status": template.status},
        )
    try:
        render_template(lookup.definition(template), body.template.components)
    except RenderError as exc:
        raise ApiError(
            422,
            "validation_error",
            f"template.components: {exc}",
            fields={"template.components": str(exc)},
        ) from exc
    _check_carried(provider, phone, template, body)
    content: dict[str, Any] = {"components": body.template.components}
    if body.custom_props:
        content["custom_props"] = body.custom_props
    return NewMessage(
        provider_id=provider.id,
        to_phone=phone,
        kind="template",
        content=content,
        template_id=template.id,
        source=source,
        priority=priority,
    )


def _check_carried(
    provider: ProviderConfig, phone: str, template: Template, body: MessageIn
) -> None:
    """A 422 naming the template's kind and the provider when the provider kind cannot carry it
    (an authentication template on the generic contract), rather than a failure later."""
    # Imported here: the session-message service builds on this module.
    from waconnect.messaging.session import check_carried
    from waconnect.providers.adapters.base import TemplateSend
    from waconnect.templates.validation import template_type

    definition = template_definition(template)
    item = TemplateSend(
        "0-0", phone, definition, body.template.components, body.custom_props or None
    )
    check_carried(provider, item, f"template {template.name!r} ({template_type(definition)})")


async def send_one(
    session: AsyncSession, runtime: Runtime, workspace_id: int, body: MessageIn
) -> int:
    settings = settings_of(await get_workspace(session, workspace_id))
    row = await prepare_template_send(
        _Lookup(session, workspace_id), body, settings, "api", PRIORITY_API
    )
    (message_id,) = await enqueue(session, runtime, workspace_id, [row])
    return message_id


async def send_batch(
    session: AsyncSession, runtime: Runtime, workspace_id: int, bodies: Sequence[MessageIn]
) -> list[tuple[int, int | None, ApiError | None]]:
    """Per item: (index, message id, error). Good items are queued even when others fail."""
    settings = settings_of(await get_workspace(session, workspace_id))
    lookup = _Lookup(session, workspace_id)
    prepared: list[tuple[int, NewMessage]] = []
    results: list[tuple[int, int | None, ApiError | None]] = []
    for index, body in enumerate(bodies):
        try:
            prepared.append(
                (index, await prepare_template_send(lookup, body, settings, "api", PRIORITY_API))
            )
        except ApiError as exc:
            results.append((index, None, exc))
    ids = await enqueue(session, runtime, workspace_id, [row for _i, row in prepared])
    results.extend(
        (index, message_id, None) for (index, _row), message_id in zip(prepared, ids, strict=True)
    )
    results.sort(key=lambda item: item[0])
    return results


# --- reading ------------------------------------------------------------------------------------


def to_out(message: Message) -> MessageOut:
    error = None
    if message.error_code:
        error = {"code": message.error_code, "title": message.error_title or ""}
    return MessageOut(
        id=message.id,
        provider_id=message.provider_id,
        template_id=message.template_id,
        to=message.to_phone,
        kind=message.kind,
        source=message.source,
        status=message.status,
        error=error,
        unknown_reason=message.unknown_reason,
        times={
            "queued": message.created_at,
            "sent": message.sent_at,
            "delivered": message.delivered_at,
            "read": message.read_at,
            "failed": message.failed_at,
            "updated": message.updated_at,
        },
        attempt_count=message.attempt_count,
        replied=message.replied_count,
        clicked=message.clicked_count,
        content=message.content,
    )


async def get_message(session: AsyncSession, workspace_id: int, message_id: int) -> Message:
    message = await session.get(Message, message_id)
    if message is None or message.workspace_id != workspace_id:
        raise not_found(f"message {message_id}")
    return message


async def message_detail(
    session: AsyncSession, workspace_id: int, message_id: int
) -> MessageDetail:
    message = await get_message(session, workspace_id, message_id)
    attempts = list(
        await session.scalars(
            select(Attempt).where(Attempt.message_id == message.id).order_by(Attempt.number)
        )
    )
    events = list(
        await session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_id == message.id)
            .order_by(MessageEvent.id)
        )
    )
    numbers = {attempt.id: attempt.number for attempt in attempts}
    attempt_out = [
        AttemptOut(
            number=a.number,
            reference=a.reference,
            outcome=a.outcome,
            began_at=a.began_at,
            finished_at=a.finished_at,
            request=a.request,
            http_status=a.http_status,
            response=a.response,
            error={"code": a.error_code, "title": a.error_title or ""} if a.error_code else None,
            provider_request_id=a.provider_request_id,
        )
        for a in attempts
    ]
    timeline = [
        TimelineEntry(
            at=a.began_at,
            kind="attempt",
            detail={"number": a.number, "outcome": a.outcome, "http_status": a.http_status},
        )
        for a in attempts
    ] + [
        TimelineEntry(
            at=e.received_at,
            kind="report",
            detail={
                "status": e.status,
                "attempt": numbers.get(e.attempt_id),
                "effect": e.effect,
                "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None,
                "error_code": e.error_code,
                "callback_id": e.callback_id,
            },
        )
        for e in events
    ]
    timeline.sort(key=lambda entry: entry.at)
    base = to_out(message)
    return MessageDetail(**base.model_dump(), attempts=attempt_out, timeline=timeline)


async def list_messages(
    session: AsyncSession,
    workspace_id: int,
    status: str | None,
    provider_id: int | None,
    to: str | None,
    cursor: str | None,
    limit: int,
) -> MessagePage:
    query = select(Message).where(Message.workspace_id == workspace_id)
    if status:
        query = query.where(Message.status == status)
    if provider_id is not None:
        query = query.where(Message.provider_id == provider_id)
    if to:
        settings = settings_of(await get_workspace(session, workspace_id))
        try:
            phone = normalize_phone(to, settings.default_country)
        except InvalidPhone as exc:
            raise ApiError(422, "validation_error", f"to: {exc}", fields={"to": str(exc)}) from exc
        query = query.where(Message.to_phone == phone)
    if cursor:
        if not cursor.isdigit():
            raise ApiError(
                422, "validation_error", "cursor: use the next_cursor of the previous page"
            )
        query = query.where(Message.id < int(cursor))
    rows = list(await session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(
        items=[to_out(row) for row in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


async def count_by_status(
    session: AsyncSession, workspace_id: int, provider_id: int | None
) -> dict[str, int]:
    query = (
        select(Message.status, func.count())
        .where(Message.workspace_id == workspace_id)
        .group_by(Message.status)
    )
    if provider_id is not None:
        query = query.where(Message.provider_id == provider_id)
    counts = {status.value: 0 for status in Status}
    for status, count in (await session.execute(query)).all():
        counts[status] = count
    return counts
