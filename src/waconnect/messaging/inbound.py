"""Customers' messages: contacts, the 24-hour window, opt-out / opt-in, the auto-reply.

design.md, "Phones, contacts and the 24-hour window" and "Callbacks": an inbound message
opens (or refreshes) the window of its (provider config, phone), is stored with what it
answers, may change the contact's subscription by keyword, and gets the provider config's
auto-reply when the sender has no profile — at most once per number per 24 hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging import service
from waconnect.messaging.models import Attempt, Contact, ContactWindow, InboundRecord, Message
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.profiles.events import REPLIED, SystemEvent, record_system_events
from waconnect.providers.adapters.base import InboundMessage
from waconnect.providers.models import ProviderConfig
from waconnect.runtime import Runtime
from waconnect.web.errors import ApiError
from waconnect.workspaces.schemas import WorkspaceSettings
from waconnect.workspaces.service import get_workspace, settings_of

if TYPE_CHECKING:
    from waconnect.messaging.callbacks import Pending

WINDOW = timedelta(hours=24)
AUTO_REPLY_EVERY = timedelta(hours=24)
UNSUBSCRIBED = "unsubscribed"
SUBSCRIBED = "subscribed"

CONTACTS = cast(Table, Contact.__table__)
WINDOWS = cast(Table, ContactWindow.__table__)
INBOUND = cast(Table, InboundRecord.__table__)
MESSAGES = cast(Table, Message.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
IN_CLAUSE = 500


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _chunks(values: Sequence[Any], size: int = IN_CLAUSE) -> list[Sequence[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


# --- keywords ------------------------------------------------------------------------------


def matched_keyword(keywords: Sequence[str], message: InboundMessage) -> str | None:
    """The keyword (as configured) that the whole message is, in any case: its text trimmed,
    or a tapped button's payload or label."""
    if not keywords:
        return None
    wanted = {word.strip().casefold(): word.strip() for word in keywords if word.strip()}
    for candidate in (message.text, message.button_payload, message.button_text):
        if candidate:
            found = wanted.get(candidate.strip().casefold())
            if found is not None:
                return found
    return None


# --- applying a batch of inbound callbacks ---------------------------------------------------


@dataclass(slots=True)
class _ContactState:
    id: int
    subscription: str
    subscription_source: str | None
    subscription_changed_at: datetime | None
    last_auto_reply_at: datetime | None
    profile_id: int | None
    changed: bool = False

    @property
    def opted_out(self) -> bool:
        """Said STOP (or another opt-out keyword) and has not come back."""
        return self.subscription == UNSUBSCRIBED and (self.subscription_source or "").startswith(
            "keyword:"
        )


@dataclass(frozen=True, slots=True)
class _AutoReplyConfig:
    workspace_id: int
    enabled: bool
    text: str | None


async def apply_inbound(session: AsyncSession, runtime: Runtime, batch: Sequence[Pending]) -> bool:
    """Store and act on the inbound messages of ``batch`` in the session's transaction.

    Every customer message is kept (once per provider event id). Returns whether auto-replies
    were queued (the dispatcher should be woken). Commits nothing.
    """
    flat: list[tuple[Pending, InboundMessage]] = [
        (p, m) for p in batch for m in p.items if isinstance(m, InboundMessage)
    ]
    flat = await _without_duplicates(session, flat)
    if not flat:
        return False

    configs = await _auto_reply_configs(session, {p.provider_id for p, _m in flat})
    settings: dict[int, WorkspaceSettings] = {}
    for workspace_id in sorted({p.workspace_id for p, _m in flat}):
        settings[workspace_id] = settings_of(await get_workspace(session, workspace_id))
    contacts = await _contacts(session, runtime, flat, settings)
    replied_to = await _replied_messages(session, flat)

    records: list[dict[str, Any]] = []
    # Whether each record's sender has a profile (is tracked): only those get an event.
    tracked: list[bool] = []
    windows: dict[tuple[int, int], datetime] = {}
    replies: dict[int, int] = {}
    auto_replies: dict[int, list[tuple[int, service.NewMessage]]] = {}
    for pending, message in flat:
        workspace = settings[pending.workspace_id]
        contact = contacts[(pending.workspace_id, message.from_phone)]
        at = pending.received_at
        key = (contact.id, pending.provider_id)
        windows[key] = max(windows.get(key, at), at)

        reply_to = None
        if message.context_reference:
            hit = replied_to.get(message.context_reference)
            if hit is not None and hit[0] == pending.provider_id:
                reply_to = hit[1]
                replies[reply_to] = replies.get(reply_to, 0) + 1

        action = None
        opt_out = matched_keyword(workspace.opt_out_keywords, message)
        opt_in = None if opt_out else matched_keyword(workspace.opt_in_keywords, message)
        if opt_out or opt_in:
            contact.subscription = UNSUBSCRIBED if opt_out else SUBSCRIBED
            contact.subscription_source = f"keyword:{opt_out or opt_in}"[:50]
            contact.subscription_changed_at = at
            contact.changed = True
            action = "opt_out" if opt_out else "opt_in"

        config = configs.get(pending.provider_id)
        if (
            not opt_out
            and config is not None
            and config.enabled
            and (config.text or "").strip()
            and contact.profile_id is None
            and not contact.opted_out
            and (
                contact.last_auto_reply_at is None
                or at - contact.last_auto_reply_at >= AUTO_REPLY_EVERY
            )
        ):
            contact.last_auto_reply_at = at
            contact.changed = True
            action = action or "auto_reply"
            row = service.NewMessage(
                provider_id=pending.provider_id,
                to_phone=message.from_phone,
                kind="session",
                content={"type": "text", "text": {"body": config.text}},
                source="auto_reply",
                priority=service.PRIORITY_JOURNEY,
            )
            auto_replies.setdefault(pending.workspace_id, []).append((len(records), row))

        records.append(
            {
                "workspace_id": pending.workspace_id,
                "provider_id": pending.provider_id,
                "contact_id": contact.id,
                "from_phone": message.from_phone,
                "type": message.type[:20],
                "text": message.text,
                "button_payload": message.button_payload,
                "button_text": message.button_text,
                "context_reference": (
                    message.context_reference[:200] if message.context_reference else None
                ),
                "reply_to_message_id": reply_to,
                "payload": _payload(message),
                "event_id": message.event_id[:200] if message.event_id else None,
                "occurred_at": message.timestamp,
                "received_at": at,
                "callback_id": pending.record_id,
                "action": action,
                "auto_reply_message_id": None,
            }
        )
        tracked.append(contact.profile_id is not None)

    for workspace_id, rows in auto_replies.items():
        ids = await service.enqueue(session, runtime, workspace_id, [row for _i, row in rows])
        for (index, _row), message_id in zip(rows, ids, strict=True):
            records[index]["auto_reply_message_id"] = message_id

    await _store_records(session, records, tracked)
    upsert = _insert(session)(WINDOWS)
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["contact_id", "provider_id"],
            set_={"last_inbound_at": upsert.excluded.last_inbound_at},
            where=WINDOWS.c.last_inbound_at < upsert.excluded.last_inbound_at,
        ),
        [
            {"contact_id": contact_id, "provider_id": provider_id, "last_inbound_at": at}
            for (contact_id, provider_id), at in windows.items()
        ],
    )
    changed = [c for c in contacts.values() if c.changed]
    if changed:
        await session.execute(
            update(CONTACTS)
            .where(CONTACTS.c.id == bindparam("b_id"))
            .values(
                subscription=bindparam("b_subscription"),
                subscription_source=bindparam("b_source"),
                subscription_changed_at=bindparam("b_changed_at"),
                last_auto_reply_at=bindparam("b_auto_reply_at"),
            ),
            [
                {
                    "b_id": c.id,
                    "b_subscription": c.subscription,
                    "b_source": c.subscription_source,
                    "b_changed_at": c.subscription_changed_at,
                    "b_auto_reply_at": c.last_auto_reply_at,
                }
                for c in changed
            ],
        )
    if replies:
        await session.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("b_id"))
            .values(replied_count=MESSAGES.c.replied_count + bindparam("b_n")),
            [{"b_id": message_id, "b_n": n} for message_id, n in sorted(replies.items())],
        )
    return bool(auto_replies)


async def _store_records(
    session: AsyncSession, records: list[dict[str, Any]], tracked: list[bool]
) -> None:
    """Insert the inbound records; a tracked sender's reply also becomes ``WhatsApp Replied``
    on its profile, naming the stored record (so its id is read back for those only)."""
    statement = _insert(session)(INBOUND).on_conflict_do_nothing(
        index_elements=["provider_id", "event_id"],
        index_where=text("event_id IS NOT NULL"),
    )
    untracked = [record for record, known in zip(records, tracked, strict=True) if not known]
    if untracked:
        await session.execute(statement, untracked)
    replies = [record for record, known in zip(records, tracked, strict=True) if known]
    if not replies:
        return
    # Duplicates were dropped before (_without_duplicates): every row is inserted, in order.
    result = await session.execute(
        statement.returning(INBOUND.c.id, sort_by_parameter_order=True), replies
    )
    ids = list(result.scalars())
    await record_system_events(
        session,
        None,
        [
            SystemEvent(
                REPLIED,
                record["received_at"],
                contact_id=record["contact_id"],
                message_id=record["reply_to_message_id"],
                properties={
                    "text": record["text"],
                    "type": record["type"],
                    "button_payload": record["button_payload"],
                    "button_text": record["button_text"],
                    "inbound_id": inbound_id,
                    "provider_id": record["provider_id"],
                },
            )
            for record, inbound_id in zip(replies, ids, strict=True)
        ],
    )


def _payload(message: InboundMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if message.media:
        payload["media"] = dict(message.media)
    if message.location:
        payload["location"] = dict(message.location)
    if message.to_number:
        payload["to"] = message.to_number
    return payload


async def _without_duplicates(
    session: AsyncSession, flat: list[tuple[Pending, InboundMessage]]
) -> list[tuple[Pending, InboundMessage]]:
    """Drop messages whose (provider, event id) was stored before or comes twice in the batch."""
    event_ids = sorted({m.event_id[:200] for _p, m in flat if m.event_id})
    known: set[tuple[int, str]] = set()
    for chunk in _chunks(event_ids):
        rows = await session.execute(
            select(INBOUND.c.provider_id, INBOUND.c.event_id).where(INBOUND.c.event_id.in_(chunk))
        )
        known.update((provider_id, event_id) for provider_id, event_id in rows)
    kept = []
    for pending, message in flat:
        if message.event_id:
            key = (pending.provider_id, message.event_id[:200])
            if key in known:
                continue
            known.add(key)
        kept.append((pending, message))
    return kept


async def _auto_reply_configs(
    session: AsyncSession, provider_ids: set[int]
) -> dict[int, _AutoReplyConfig]:
    rows = await session.execute(
        select(
            ProviderConfig.id,
            ProviderConfig.workspace_id,
            ProviderConfig.auto_reply_enabled,
            ProviderConfig.auto_reply_text,
        ).where(ProviderConfig.id.in_(sorted(provider_ids)))
    )
    return {
        provider_id: _AutoReplyConfig(workspace_id, bool(enabled), reply)
        for provider_id, workspace_id, enabled, reply in rows
    }


async def _contacts(
    session: AsyncSession,
    runtime: Runtime,
    flat: Sequence[tuple[Pending, InboundMessage]],
    settings: dict[int, WorkspaceSettings],
) -> dict[tuple[int, str], _ContactState]:
    """The contact of every sender, made with the workspace's default subscription if new."""
    now = runtime.clock.now()
    phones: dict[int, set[str]] = {}
    for pending, message in flat:
        phones.setdefault(pending.workspace_id, set()).add(message.from_phone)
    found: dict[tuple[int, str], _ContactState] = {}
    for workspace_id, numbers in phones.items():
        await service.contact_ids(
            session, workspace_id, sorted(numbers), settings[workspace_id], now
        )
        for chunk in _chunks(sorted(numbers)):
            query = (
                select(
                    CONTACTS.c.phone,
                    CONTACTS.c.id,
                    CONTACTS.c.subscription,
                    CONTACTS.c.subscription_source,
                    CONTACTS.c.subscription_changed_at,
                    CONTACTS.c.last_auto_reply_at,
                    CONTACTS.c.profile_id,
                )
                .where(CONTACTS.c.workspace_id == workspace_id, CONTACTS.c.phone.in_(chunk))
                .order_by(CONTACTS.c.id)
            )
            if session.get_bind().dialect.name == "postgresql":
                # Two processes must not both decide to auto-reply to one number.
                query = query.with_for_update()
            rows = await session.execute(query)
            for phone, *state in rows:
                found[(workspace_id, phone)] = _ContactState(*state)
    return found


async def _replied_messages(
    session: AsyncSession, flat: Sequence[tuple[Pending, InboundMessage]]
) -> dict[str, tuple[int, int]]:
    """Attempt reference -> (provider id, message id) for the context references given."""
    references = sorted({m.context_reference for _p, m in flat if m.context_reference})
    found: dict[str, tuple[int, int]] = {}
    for chunk in _chunks(references):
        rows = await session.execute(
            select(ATTEMPTS.c.reference, MESSAGES.c.provider_id, MESSAGES.c.id)
            .join_from(ATTEMPTS, MESSAGES, MESSAGES.c.id == ATTEMPTS.c.message_id)
            .where(ATTEMPTS.c.reference.in_(chunk))
        )
        for reference, provider_id, message_id in rows:
            found[reference] = (provider_id, message_id)
    return found


# --- reading -----------------------------------------------------------------------------------


class InboundOut(BaseModel):
    """A customer's message as the API shows it."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    provider_id: int
    contact_id: int
    profile_id: int | None = Field(
        default=None,
        description="the profile the sender's number links to now; null: an untracked sender",
    )
    from_phone: str = Field(alias="from", description="the sender, E.164 digits without +")
    type: str = Field(
        description="text, button, interactive, image, video, audio, document, "
        "location, reaction or unknown"
    )
    text: str | None = Field(description="body, caption, button label or reaction emoji")
    button_payload: str | None = Field(description="quick-reply payload / interactive reply id")
    button_text: str | None
    payload: dict[str, Any] = Field(description="media and location details, where given")
    context_reference: str | None = Field(description="the provider's id of the message answered")
    reply_to_message_id: int | None = Field(description="our message it answers, when known")
    action: str | None = Field(description="what waconnect did: opt_out, opt_in, auto_reply")
    auto_reply_message_id: int | None
    occurred_at: datetime | None
    received_at: datetime


class InboundPage(BaseModel):
    items: list[InboundOut]
    next_cursor: str | None


async def window_open_until(
    session: AsyncSession, provider_id: int, phone: str, workspace_id: int
) -> datetime | None:
    """When the 24-hour window of (provider config, phone) closes: the last inbound message
    plus 24 hours, or None when the number never wrote to this provider config.

    The time may be past: compare it with the business clock (``runtime.clock.now()``).
    """
    last = await session.scalar(
        select(WINDOWS.c.last_inbound_at)
        .join_from(WINDOWS, CONTACTS, CONTACTS.c.id == WINDOWS.c.contact_id)
        .where(
            CONTACTS.c.workspace_id == workspace_id,
            CONTACTS.c.phone == phone,
            WINDOWS.c.provider_id == provider_id,
        )
    )
    return None if last is None else last + WINDOW


def to_out(record: InboundRecord, profile_id: int | None = None) -> InboundOut:
    return InboundOut.model_validate(
        {
            "id": record.id,
            "provider_id": record.provider_id,
            "contact_id": record.contact_id,
            "profile_id": profile_id,
            "from": record.from_phone,
            "type": record.type,
            "text": record.text,
            "button_payload": record.button_payload,
            "button_text": record.button_text,
            "payload": record.payload or {},
            "context_reference": record.context_reference,
            "reply_to_message_id": record.reply_to_message_id,
            "action": record.action,
            "auto_reply_message_id": record.auto_reply_message_id,
            "occurred_at": record.occurred_at,
            "received_at": record.received_at,
        }
    )


async def list_inbound(
    session: AsyncSession,
    workspace_id: int,
    provider_id: int | None,
    from_phone: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
    tracked: bool | None = None,
) -> InboundPage:
    """Newest first; ``next_cursor`` continues where this page ended. ``tracked``: only
    senders a profile links to (True) or only untracked senders (False)."""
    query = (
        select(InboundRecord, Contact.profile_id)
        .join(Contact, Contact.id == InboundRecord.contact_id)
        .where(InboundRecord.workspace_id == workspace_id)
    )
    if tracked is not None:
        linked = Contact.profile_id.is_not(None)
        query = query.where(linked if tracked else ~linked)
    if provider_id is not None:
        query = query.where(InboundRecord.provider_id == provider_id)
    if from_phone:
        settings = settings_of(await get_workspace(session, workspace_id))
        try:
            phone = normalize_phone(from_phone, settings.default_country)
        except InvalidPhone as exc:
            raise ApiError(
                422, "validation_error", f"from: {exc}", fields={"from": str(exc)}
            ) from exc
        query = query.where(InboundRecord.from_phone == phone)
    if kind:
        query = query.where(InboundRecord.type == kind)
    if cursor:
        if not cursor.isdigit() or len(cursor) > 19:
            raise ApiError(
                422,
                "validation_error",
                "cursor: use the next_cursor of the previous page",
                fields={"cursor": "use the next_cursor of the previous page"},
            )
        query = query.where(InboundRecord.id < int(cursor))
    result = await session.execute(query.order_by(InboundRecord.id.desc()).limit(limit + 1))
    rows = [(record, profile_id) for record, profile_id in result.all()]
    more = len(rows) > limit
    rows = rows[:limit]
    return InboundPage(
        items=[to_out(record, profile_id) for record, profile_id in rows],
        next_cursor=str(rows[-1][0].id) if more and rows else None,
    )
