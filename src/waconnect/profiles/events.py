"""Events: what profiles did — sent by the API in batches, or recorded by the message loop.

The message loop's statuses and replies become the system events ``WhatsApp Sent``,
``WhatsApp Delivered``, ``WhatsApp Read``, ``WhatsApp Failed``, ``WhatsApp Replied`` and
``WhatsApp Clicked`` on the profile the message went to (``record_system_events``). Those names
are reserved: the API refuses them, so a segment on them means what the loop saw.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import Table

from waconnect.messaging.journal import Bulk, DriverSql, sqlite_time
from waconnect.messaging.models import Contact, Message
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.profiles.models import ONCE_WHERE, Event, Profile
from waconnect.profiles.schemas import EventIn
from waconnect.profiles.service import (
    IN_CLAUSE,
    Outcome,
    RowError,
    chunks,
    plan_each_run,
)
from waconnect.providers.errors import ProviderError
from waconnect.runtime import Runtime
from waconnect.workspaces.service import get_workspace, settings_of

EVENTS = cast(Table, Event.__table__)
PROFILES = cast(Table, Profile.__table__)
CONTACTS = cast(Table, Contact.__table__)
MESSAGES = cast(Table, Message.__table__)

SENT = "WhatsApp Sent"
DELIVERED = "WhatsApp Delivered"
READ = "WhatsApp Read"
FAILED = "WhatsApp Failed"
REPLIED = "WhatsApp Replied"
CLICKED = "WhatsApp Clicked"
SYSTEM_EVENTS = (SENT, DELIVERED, READ, FAILED, REPLIED, CLICKED)
# A delivery report's status (messaging/states.py, plus "clicked") -> its event.
STATUS_EVENTS = {
    "sent": SENT,
    "delivered": DELIVERED,
    "read": READ,
    "failed": FAILED,
    "clicked": CLICKED,
}
_MAX_DEPTH = 20
_MAX_INT = 2**63 - 1


# --- listeners ----------------------------------------------------------------------------------

# Called in the recording transaction with the rows just written (dicts with workspace_id,
# profile_id, name, ts, properties, message_id), so whatever reacts to an event (journeys) commits
# or rolls back with it. A listener must not commit.
EventListener = Callable[[AsyncSession, Sequence[Mapping[str, Any]]], Awaitable[None]]
_listeners: list[EventListener] = []
# Per listener: a query that finds a row when events named in $1 (a JSON list) may concern it,
# run on SQLite in the recording transaction (see ``quick_send_outcomes``); None: always.
_busy_when: list[str | None] = []


def add_event_listener(listener: EventListener, busy_when: str | None = None) -> None:
    """Register ``listener`` for every recorded event (API, CSV, or the message loop's).

    ``busy_when`` (SQLite SQL, optional) lets the message loop record its statuses without
    calling the listener when the query finds nothing, in one hop to the database."""
    if listener not in _listeners:
        _listeners.append(listener)
        _busy_when.append(busy_when)


async def notify_event_listeners(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    for listener in _listeners:
        await listener(session, rows)


# --- the message loop -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """One thing the message loop saw. Name whom it is about by any one of: ``message_id``
    (the profile the message went to), ``contact_id``, or ``profile_id``."""

    name: str
    ts: datetime
    message_id: int | None = None
    contact_id: int | None = None
    profile_id: int | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


async def record_system_events(
    session: AsyncSession, workspace_id: int | None, events: Sequence[SystemEvent]
) -> int:
    """Add the loop's events in the caller's transaction (commits nothing); returns how many
    found a profile. Events of numbers without a profile are not kept (an event is something a
    profile did). Sent / Delivered / Read / Failed are kept once per message however often
    they are reported; Replied and Clicked every time. ``workspace_id`` None: each event goes
    to its profile's workspace (a callbacks batch may span workspaces).

    The message loop calls this for every batch it applies, mostly about numbers without a
    profile: that case costs one indexed query (messages joined to the profiles of their
    contacts) and nothing else.
    """
    if not events:
        return 0
    by_message = await _message_targets(
        session, {e.message_id for e in events if e.message_id is not None}
    )
    by_contact = await _contact_profiles(
        session, {e.contact_id for e in events if e.contact_id is not None}
    )
    owners = await _live_profiles(
        session, {e.profile_id for e in events if e.profile_id is not None}
    )
    owners.update(by_contact.values())
    owners.update((pid, workspace) for pid, workspace, _props in by_message.values())
    kept: list[dict[str, Any]] = []
    for event in events:
        properties = dict(event.properties)
        profile_id = event.profile_id
        if profile_id is None and event.contact_id is not None:
            found = by_contact.get(event.contact_id)
            profile_id = found[0] if found is not None else None
        if event.message_id is not None:
            properties.setdefault("message_id", event.message_id)
            target = by_message.get(event.message_id)
            if target is not None:
                profile_id = profile_id or target[0]
                properties.update({k: v for k, v in target[2].items() if v is not None})
        owner = owners.get(profile_id) if profile_id is not None else None
        if owner is None or (workspace_id is not None and owner != workspace_id):
            continue
        kept.append(
            {
                "workspace_id": owner,
                "profile_id": profile_id,
                "name": event.name,
                "ts": event.ts,
                "properties": properties,
                "message_id": event.message_id,
            }
        )
    if kept:
        await _insert_system_events(session, kept)
        await notify_event_listeners(session, kept)
    return len(kept)


# The loop records an event per message it moves, thousands a second, inside the writer's
# transaction: written at the driver level (messaging/journal.py says why), a repeated
# once-per-message event skipped by the partial unique index.
_NEW_SYSTEM_EVENTS = Bulk(f"""
INSERT INTO events (workspace_id, profile_id, name, ts, properties, message_id)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (message_id, name) WHERE {ONCE_WHERE} DO NOTHING
""")


async def _insert_system_events(session: AsyncSession, kept: Sequence[Mapping[str, Any]]) -> None:
    sql = DriverSql.of(session)
    rows = [
        (
            row["workspace_id"],
            row["profile_id"],
            row["name"],
            sql.time(row["ts"]),
            orjson.dumps(row["properties"]).decode(),
            row["message_id"],
        )
        for row in kept
    ]
    await sql.execute(session, [(_NEW_SYSTEM_EVENTS, rows)])


class SendOutcome(Protocol):
    """What the dispatcher knows when a provider answered an attempt (its ``Finish``)."""

    @property
    def message_id(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def error(self) -> ProviderError | None: ...


async def record_send_outcomes(session: AsyncSession, outcomes: Sequence[SendOutcome]) -> int:
    """The provider's answer to a send, in the dispatcher's transaction: accepted makes the
    message ``sent`` (``WhatsApp Sent``), rejected makes it ``failed`` (``WhatsApp Failed``).
    Reports of the same statuses later add nothing (once per message)."""
    return await record_system_events(session, None, _send_outcome_events(outcomes))


@dataclass(frozen=True)
class QuickEvents:
    """``record_send_outcomes`` as SQLite statements for one hop: ``checks`` run first in the
    transaction, and only if none finds a row does ``insert`` (with its one value) stand in
    for the general path; else the caller rolls back and takes it."""

    checks: list[tuple[str, tuple[Any, ...]]]
    insert: tuple[str, tuple[Any, ...]] | None


def quick_send_outcomes(outcomes: Sequence[SendOutcome]) -> QuickEvents | None:
    """None when a listener gave no ``busy_when``: the general path is the only one then."""
    if None in _busy_when:
        return None
    events = _send_outcome_events(outcomes)
    names = orjson.dumps(sorted({event.name for event in events})).decode()
    checks = [(sql, (names,) if "$1" in sql else ()) for sql in _busy_when if sql]
    if not events:
        return QuickEvents(checks, None)
    rows = [
        [event.message_id, event.name, sqlite_time(event.ts), dict(event.properties)]
        for event in events
    ]
    return QuickEvents(checks, (_SQLITE_SEND_OUTCOMES, (orjson.dumps(rows).decode(),)))


# The general path in one statement: the event goes to the live profile of the message's
# contact, with the message's id, template and campaign (json_patch drops what is null).
_SQLITE_SEND_OUTCOMES = f"""
INSERT INTO events (workspace_id, profile_id, name, ts, properties, message_id)
SELECT p.workspace_id, p.id, json_extract(v.value, '$[1]'), json_extract(v.value, '$[2]'),
    json_patch(json_extract(v.value, '$[3]'), json_object(
        'message_id', m.id, 'template_id', m.template_id, 'campaign_id', m.campaign_id)),
    m.id
FROM json_each(?1) AS v
JOIN messages m ON m.id = json_extract(v.value, '$[0]')
JOIN contacts c ON c.id = m.contact_id
JOIN profiles p ON p.id = c.profile_id
WHERE p.erased_at IS NULL
ON CONFLICT (message_id, name) WHERE {ONCE_WHERE} DO NOTHING
"""


def _send_outcome_events(outcomes: Sequence[SendOutcome]) -> list[SystemEvent]:
    events: list[SystemEvent] = []
    for finish in outcomes:
        if finish.outcome == "accepted":
            events.append(SystemEvent(SENT, finish.at, message_id=finish.message_id))
        elif finish.outcome == "rejected":
            events.append(
                SystemEvent(
                    FAILED,
                    finish.at,
                    message_id=finish.message_id,
                    properties=failure_properties(finish.error),
                )
            )
    return events


def failure_properties(error: ProviderError | None) -> dict[str, Any]:
    if error is None:
        return {}
    return {"error_code": error.code, "error_title": error.title}


async def _message_targets(
    session: AsyncSession, message_ids: set[int]
) -> dict[int, tuple[int, int, dict[str, Any]]]:
    """message id -> (profile id, its workspace, what the event should say about the message),
    for messages whose number has a live profile. One statement for the whole batch."""
    if not message_ids:
        return {}
    sql = DriverSql.of(session)
    connection = await session.connection()
    result = await connection.exec_driver_sql(
        sql.sql(_TARGETS.format(ids=sql.id_list(1))), (sql.ids(sorted(message_ids)),)
    )
    return {
        message_id: (profile_id, workspace, {"template_id": template, "campaign_id": campaign})
        for message_id, profile_id, workspace, template, campaign in result.all()
    }


_TARGETS = """
SELECT m.id, p.id, p.workspace_id, m.template_id, m.campaign_id
FROM messages m
JOIN contacts c ON c.id = m.contact_id
JOIN profiles p ON p.id = c.profile_id
WHERE m.id IN ({ids}) AND p.erased_at IS NULL
"""


async def _contact_profiles(
    session: AsyncSession, contact_ids: set[int]
) -> dict[int, tuple[int, int]]:
    """contact id -> (profile id, its workspace), for contacts linked to a live profile."""
    found: dict[int, tuple[int, int]] = {}
    for chunk in chunks(sorted(contact_ids), IN_CLAUSE):
        rows = await session.execute(
            select(CONTACTS.c.id, PROFILES.c.id, PROFILES.c.workspace_id)
            .join(PROFILES, PROFILES.c.id == CONTACTS.c.profile_id)
            .where(CONTACTS.c.id.in_(chunk), PROFILES.c.erased_at.is_(None))
        )
        found.update({contact_id: (pid, workspace) for contact_id, pid, workspace in rows})
    return found


async def _live_profiles(session: AsyncSession, profile_ids: set[int]) -> dict[int, int]:
    """profile id -> workspace id, for profiles that exist and are not erased."""
    found: dict[int, int] = {}
    for chunk in chunks(sorted(profile_ids), IN_CLAUSE):
        rows = await session.execute(
            select(PROFILES.c.id, PROFILES.c.workspace_id).where(
                PROFILES.c.id.in_(chunk), PROFILES.c.erased_at.is_(None)
            )
        )
        found.update({profile_id: workspace for profile_id, workspace in rows})
    return found


# --- the API --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EventRow:
    identity: str | None
    phone: str | None
    name: str
    properties: dict[str, Any]
    ts: datetime


def check_json(value: Any, path: str = "properties", depth: int = 0) -> None:
    """Properties are stored as JSON on both databases: no NUL (PostgreSQL refuses it), no
    number JSON cannot carry, and a sane depth."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{path}: nested more than {_MAX_DEPTH} deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path}: text may not contain the NUL character (\\u0000)")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > _MAX_INT:
            raise ValueError(f"{path}: {value} is beyond 64-bit integers")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: numbers must be finite")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise ValueError(f"{path}: a key contains the NUL character")
            check_json(item, f"{path}.{key}", depth + 1)
    else:
        raise ValueError(f"{path}: not a JSON value")


def _event_time(value: datetime | float | None, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"ts: {value} is not a time in epoch seconds") from exc


def parse_event_row(raw: Any, default_country: str, now: datetime) -> _EventRow | RowError:
    if not isinstance(raw, dict):
        return RowError("validation_error", "each event is an object")
    try:
        parsed = EventIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "event"
        reason = "unknown field" if first.get("type") == "extra_forbidden" else first.get("msg")
        return RowError("validation_error", f"{where}: {str(reason).removeprefix('Value error, ')}")
    if (parsed.identity is None) == (parsed.phone is None):
        return RowError(
            "validation_error", "give identity or phone (one of them) to name the profile"
        )
    if parsed.name in SYSTEM_EVENTS:
        return RowError(
            "reserved_name",
            f"{parsed.name!r} is recorded by the message loop itself; name your event otherwise",
            "name",
        )
    try:
        if "\x00" in parsed.name:
            raise ValueError("name: text may not contain the NUL character (\\u0000)")
        check_json(parsed.properties)
        ts = _event_time(parsed.ts, now)
    except ValueError as exc:
        return RowError("validation_error", str(exc))
    phone = None
    if parsed.phone is not None:
        try:
            phone = normalize_phone(parsed.phone, default_country)
        except InvalidPhone as exc:
            return RowError("invalid_phone", f"phone: {exc}", "phone")
    return _EventRow(parsed.identity, phone, parsed.name, parsed.properties, ts)  # type: ignore[arg-type]


async def record_events(runtime: Runtime, workspace_id: int, raws: Sequence[Any]) -> list[Outcome]:
    """Record an API batch; one outcome per row (``recorded`` or ``error``)."""
    async with runtime.writer() as session:
        await plan_each_run(session)
        settings = settings_of(await get_workspace(session, workspace_id))
        now = runtime.clock.now()
        rows = [parse_event_row(raw, settings.default_country, now) for raw in raws]
        identities, phones = await _profile_ids(session, workspace_id, rows)
        outcomes: list[Outcome] = []
        values: list[dict[str, Any]] = []
        for row in rows:
            if isinstance(row, RowError):
                outcomes.append(Outcome("error", error=row))
                continue
            if row.identity is not None:
                profile_id = identities.get(row.identity)
            else:
                profile_id = phones.get(row.phone or "")
            if profile_id is None:
                who = f"identity {row.identity!r}" if row.identity else f"phone {row.phone}"
                outcomes.append(
                    Outcome(
                        "error",
                        error=RowError(
                            "profile_not_found",
                            f"no profile with {who}; create it with POST /api/v1/profiles/batch",
                        ),
                    )
                )
                continue
            values.append(
                {
                    "workspace_id": workspace_id,
                    "profile_id": profile_id,
                    "name": row.name,
                    "ts": row.ts,
                    "properties": row.properties,
                    "message_id": None,
                }
            )
            outcomes.append(Outcome("recorded", profile_id))
        if values:
            await session.execute(EVENTS.insert(), values)
            await notify_event_listeners(session, values)
        await session.commit()
        return outcomes


async def _profile_ids(
    session: AsyncSession, workspace_id: int, rows: Sequence[_EventRow | RowError]
) -> tuple[dict[str, int], dict[str, int]]:
    good = [row for row in rows if isinstance(row, _EventRow)]
    found: tuple[dict[str, int], dict[str, int]] = ({}, {})
    keyed = (
        (PROFILES.c.identity, sorted({r.identity for r in good if r.identity}), found[0]),
        (PROFILES.c.phone, sorted({r.phone for r in good if r.phone}), found[1]),
    )
    for column, values, into in keyed:
        for chunk in chunks(values, IN_CLAUSE):
            rows_found = await session.execute(
                select(column, PROFILES.c.id).where(
                    PROFILES.c.workspace_id == workspace_id, column.in_(chunk)
                )
            )
            into.update({key: pid for key, pid in rows_found})
    return found
