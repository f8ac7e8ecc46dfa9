"""Erasing a profile: its personal data goes, its anonymous counts stay.

What goes: identity, phone, country, attributes and time zone of the profile; its events'
properties; the phone and the personalized text of its messages (content, the requests as
sent and the provider's answers); its inbound messages' text and payload; and the raw bodies of
the callbacks that concerned it. Each is replaced by a hash, so rows keep their shape and their
counts (messages by status, events by name and time, inbound by type) without the person.

The hashes are salted with random bytes that are thrown away: an unsalted hash of a phone
number can be reversed by trying every number. Within one erasure the salt is the same, so the
same value gets the same hash everywhere (a message's phone equals its contact's).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import bindparam, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import Table

from waconnect.messaging.models import (
    Attempt,
    CallbackRecord,
    Contact,
    ContactWindow,
    InboundRecord,
    Message,
    MessageEvent,
)
from waconnect.messaging.states import Status
from waconnect.profiles.models import Event, Profile
from waconnect.profiles.schemas import Erased
from waconnect.profiles.service import chunks, dialect_of
from waconnect.runtime import Runtime
from waconnect.web.errors import not_found

MESSAGES = cast(Table, Message.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
REPORTS = cast(Table, MessageEvent.__table__)
CALLBACKS = cast(Table, CallbackRecord.__table__)
INBOUND = cast(Table, InboundRecord.__table__)
CONTACTS = cast(Table, Contact.__table__)
EVENTS = cast(Table, Event.__table__)


@dataclass(frozen=True)
class _Hasher:
    salt: bytes

    def digest(self, value: Any) -> str:
        data = value if isinstance(value, bytes) else orjson.dumps(value)
        return "sha256:" + hashlib.sha256(self.salt + data).hexdigest()

    def phone(self, phone: str) -> str:
        # Phone columns hold 20 characters: "#" and 76 bits of the hash.
        return "#" + hashlib.sha256(self.salt + phone.encode()).hexdigest()[:19]


async def erase_profile(runtime: Runtime, workspace_id: int, profile_id: int) -> Erased:
    """Erase in one transaction; erasing an erased profile again changes nothing."""
    async with runtime.writer() as session:
        query = select(Profile).where(Profile.id == profile_id)
        if dialect_of(session) == "postgresql":
            query = query.with_for_update()
        profile = await session.scalar(query)
        if profile is None or profile.workspace_id != workspace_id:
            raise not_found(f"profile {profile_id}")
        if profile.erased_at is not None:
            return Erased(
                id=profile.id, erased_at=profile.erased_at, messages=0, inbound=0, callbacks=0
            )
        now = runtime.clock.now()
        hasher = _Hasher(os.urandom(16))
        counts = (0, 0, 0)
        if profile.phone:
            counts = await _erase_phone(session, workspace_id, profile.phone, hasher)
        await session.execute(
            update(cast(Table, Event.__table__))
            .where(Event.profile_id == profile.id)
            .values(properties={})
        )
        profile.identity = None
        profile.phone = None
        profile.country = None
        profile.attributes = {}
        profile.timezone = None
        profile.erased_at = now
        profile.updated_at = now
        await session.commit()
        messages, inbound, callbacks = counts
        return Erased(
            id=profile_id, erased_at=now, messages=messages, inbound=inbound, callbacks=callbacks
        )


async def _erase_phone(
    session: AsyncSession, workspace_id: int, phone: str, hasher: _Hasher
) -> tuple[int, int, int]:
    contact_id = await session.scalar(
        select(CONTACTS.c.id).where(
            CONTACTS.c.workspace_id == workspace_id, CONTACTS.c.phone == phone
        )
    )
    message_ids = await _erase_messages(session, workspace_id, phone, contact_id, hasher)
    inbound_ids: list[int] = []
    callback_ids: set[int] = set()
    for chunk in chunks(message_ids):
        rows = await session.execute(
            select(REPORTS.c.callback_id).where(
                REPORTS.c.message_id.in_(chunk), REPORTS.c.callback_id.is_not(None)
            )
        )
        callback_ids.update(row[0] for row in rows)
    if contact_id is not None:
        inbound_ids, inbound_callbacks = await _erase_inbound(session, contact_id, hasher)
        callback_ids.update(inbound_callbacks)
        await session.execute(delete(ContactWindow).where(ContactWindow.contact_id == contact_id))
        # The contact stays (its subscription still counts), but no longer names the number.
        await session.execute(
            update(CONTACTS)
            .where(CONTACTS.c.id == contact_id)
            .values(phone=hasher.phone(phone), profile_id=None)
        )
    callback_ids.update(await _callbacks_naming(session, workspace_id, phone))
    await _erase_callbacks(session, sorted(callback_ids), hasher)
    return len(message_ids), len(inbound_ids), len(callback_ids)


async def _erase_messages(
    session: AsyncSession, workspace_id: int, phone: str, contact_id: int | None, hasher: _Hasher
) -> list[int]:
    mine = [MESSAGES.c.to_phone == phone]
    if contact_id is not None:
        mine.append(MESSAGES.c.contact_id == contact_id)
    rows = (
        await session.execute(
            select(MESSAGES.c.id, MESSAGES.c.content, MESSAGES.c.status).where(
                MESSAGES.c.workspace_id == workspace_id, or_(*mine)
            )
        )
    ).all()
    if not rows:
        return []
    # A message still waiting would go out with its text gone: it will not be sent now.
    await session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id == bindparam("b_id"))
        .values(
            to_phone=bindparam("b_phone"),
            content=bindparam("b_content"),
            status=bindparam("b_status"),
        ),
        [
            {
                "b_id": message_id,
                "b_phone": hasher.phone(phone),
                "b_content": {"erased": hasher.digest(content)},
                "b_status": Status.CANCELLED if status == Status.QUEUED else status,
            }
            for message_id, content, status in rows
        ],
    )
    ids = [row[0] for row in rows]
    for chunk in chunks(ids):
        attempts = (
            await session.execute(
                select(ATTEMPTS.c.id, ATTEMPTS.c.request, ATTEMPTS.c.response).where(
                    ATTEMPTS.c.message_id.in_(chunk)
                )
            )
        ).all()
        if attempts:
            await session.execute(
                update(ATTEMPTS)
                .where(ATTEMPTS.c.id == bindparam("b_id"))
                .values(request=bindparam("b_request"), response=bindparam("b_response")),
                [
                    {
                        "b_id": attempt_id,
                        "b_request": {"erased": hasher.digest(request)} if request else None,
                        "b_response": hasher.digest(response.encode()) if response else None,
                    }
                    for attempt_id, request, response in attempts
                ],
            )
    return ids


async def _erase_inbound(
    session: AsyncSession, contact_id: int, hasher: _Hasher
) -> tuple[list[int], set[int]]:
    rows = (
        await session.execute(
            select(
                INBOUND.c.id,
                INBOUND.c.from_phone,
                INBOUND.c.text,
                INBOUND.c.button_payload,
                INBOUND.c.button_text,
                INBOUND.c.payload,
                INBOUND.c.callback_id,
            ).where(INBOUND.c.contact_id == contact_id)
        )
    ).all()
    if rows:

        def hashed(value: str | None) -> str | None:
            return hasher.digest(value.encode()) if value is not None else None

        await session.execute(
            update(INBOUND)
            .where(INBOUND.c.id == bindparam("b_id"))
            .values(
                from_phone=bindparam("b_phone"),
                text=bindparam("b_text"),
                button_payload=bindparam("b_payload"),
                button_text=bindparam("b_button"),
                payload=bindparam("b_raw"),
            ),
            [
                {
                    "b_id": row.id,
                    "b_phone": hasher.phone(row.from_phone),
                    "b_text": hashed(row.text),
                    "b_payload": hashed(row.button_payload),
                    "b_button": hashed(row.button_text),
                    "b_raw": {"erased": hasher.digest(row.payload)},
                }
                for row in rows
            ],
        )
    return [row.id for row in rows], {row.callback_id for row in rows if row.callback_id}


async def _callbacks_naming(session: AsyncSession, workspace_id: int, phone: str) -> list[int]:
    """Raw callbacks whose body names the number (unmatched reports, bodies that failed to
    parse): a scan, but erasure is rare and must leave nothing behind."""
    if dialect_of(session) == "postgresql":
        names = text("position(CAST(:needle AS bytea) IN callback_records.body) > 0")
    else:
        names = text("instr(callback_records.body, :needle) > 0")
    rows = await session.execute(
        select(CALLBACKS.c.id).where(
            CALLBACKS.c.workspace_id == workspace_id,
            # One still waiting to be applied keeps its body until it has been.
            CALLBACKS.c.state != "stored",
            names.bindparams(needle=phone.encode()),
        )
    )
    return [row[0] for row in rows]


async def _erase_callbacks(session: AsyncSession, ids: list[int], hasher: _Hasher) -> None:
    for chunk in chunks(ids):
        rows = (
            await session.execute(
                select(CALLBACKS.c.id, CALLBACKS.c.body).where(CALLBACKS.c.id.in_(chunk))
            )
        ).all()
        if rows:
            # A body may carry other numbers' reports too; it has been applied, and what it
            # said lives on in the messages' states.
            await session.execute(
                update(CALLBACKS)
                .where(CALLBACKS.c.id == bindparam("b_id"))
                .values(body=bindparam("b_body")),
                [
                    {"b_id": callback_id, "b_body": hasher.digest(bytes(body)).encode()}
                    for callback_id, body in rows
                ],
            )
