"""Profiles: batch upsert, the attribute type registry, reading, search and the timeline.

A batch (the API's up to 1,000 rows, or a CSV import's batch) is one transaction: rows are
checked one by one (a bad row is that row's error; the others are written), matched to existing
profiles in memory, and written with a handful of executemany statements — never an ORM
object per row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import orjson
import phonenumbers
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    Text,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import Table

from waconnect.db.base import UTCDateTime, is_storable_id
from waconnect.messaging.models import Contact, InboundRecord, Message
from waconnect.phones import InvalidPhone, country_of, normalize_phone
from waconnect.profiles.attributes import (
    AttrType,
    ValueProblem,
    check_name,
    check_value,
    infer_type,
    parse_text,
)
from waconnect.profiles.compiler import SegmentCompiler
from waconnect.profiles.definition import AttributeCond
from waconnect.profiles.models import AttributeType, Event, Profile
from waconnect.profiles.schemas import (
    ProfileDetail,
    ProfileIn,
    ProfileOut,
    ProfilePage,
    SubscriptionOut,
    TimelineItem,
)
from waconnect.runtime import Runtime
from waconnect.web.errors import ApiError, conflict, invalid, not_found
from waconnect.workspaces.schemas import WorkspaceSettings
from waconnect.workspaces.service import get_workspace, settings_of

PROFILES = cast(Table, Profile.__table__)
ATTRIBUTES = cast(Table, AttributeType.__table__)
CONTACTS = cast(Table, Contact.__table__)
IN_CLAUSE = 500
# A whole batch's keys in one lookup (a CSV batch is 5,000 rows).
LOOKUP_CHUNK = 5000
ATTEMPTS = 3


# --- rows and their outcomes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was not written; shaped like the API's error object."""

    code: str
    message: str
    field: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["fields"] = {self.field: self.message.removeprefix(f"{self.field}: ")}
        return error


@dataclass(slots=True)
class ProfileRow:
    """One profile row, parsed: phone normalized, attributes still as given."""

    identity: str | None
    phone: str | None
    attributes: dict[str, Any]
    timezone: str | None = None
    timezone_given: bool = False
    subscription: str | None = None
    # The phone's region, found where the phone is parsed.
    country: str | None = None
    # Set when ``attributes`` are already in stored form with these types (a CSV column's
    # cells, parsed by the column's type): the batch then checks types per name, not per value.
    types: Mapping[str, AttrType] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # created | updated | error
    id: int | None = None
    error: RowError | None = None


def parse_profile_row(raw: Any, default_country: str) -> ProfileRow | RowError:
    """An API row, checked on its own (the registry checks come with the batch)."""
    if not isinstance(raw, dict):
        return RowError("validation_error", "each profile is an object")
    try:
        parsed = ProfileIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "profile"
        reason = "unknown field" if first.get("type") == "extra_forbidden" else first.get("msg")
        reason = str(reason).removeprefix("Value error, ")
        return RowError("validation_error", f"{where}: {reason}", where)
    phone: str | None = None
    if parsed.phone is not None:
        try:
            phone = normalize_phone(parsed.phone, default_country)
        except InvalidPhone as exc:
            return RowError("invalid_phone", f"phone: {exc}", "phone")
    if parsed.identity is None and phone is None:
        return RowError(
            "validation_error",
            "give identity or phone (or both): a profile is matched by identity, else by phone",
        )
    for name in parsed.attributes:
        try:
            check_name(name)
        except ValueProblem as exc:
            return RowError(exc.code, exc.message, f"attributes.{name}")
    return ProfileRow(
        identity=parsed.identity,  # type: ignore[arg-type]  # the validator made it text
        phone=phone,
        country=phone_country(phone) if phone else None,
        attributes=parsed.attributes,
        timezone=parsed.timezone,
        timezone_given="timezone" in parsed.model_fields_set,
        subscription=parsed.subscription,
    )


def phone_country(phone: str) -> str | None:
    """The ISO region of a normalized phone, cheaply: most calling codes belong to one region;
    only shared ones (+1, +7, +44, ...) need the numbering plan."""
    for digits in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(phone[:digits]))
        if regions:
            if len(regions) == 1 and regions[0] != "001":
                return str(regions[0])
            return country_of(phone)
    return None


# --- the attribute registry -----------------------------------------------------------------


async def load_registry(session: AsyncSession, workspace_id: int) -> dict[str, AttrType]:
    rows = await session.execute(
        select(ATTRIBUTES.c.name, ATTRIBUTES.c.type).where(
            ATTRIBUTES.c.workspace_id == workspace_id
        )
    )
    return {name: AttrType(kind) for name, kind in rows}


async def register_types(
    session: AsyncSession, workspace_id: int, types: dict[str, AttrType], now: datetime
) -> dict[str, AttrType]:
    """Register new names (the first writer wins); returns the registered types of ``types``."""
    if not types:
        return {}
    insert = dialect_insert(session)
    await session.execute(
        insert(ATTRIBUTES).on_conflict_do_nothing(index_elements=["workspace_id", "name"]),
        [
            {"workspace_id": workspace_id, "name": name, "type": kind.value, "created_at": now}
            for name, kind in types.items()
        ],
    )
    registered: dict[str, AttrType] = {}
    for chunk in chunks(sorted(types)):
        rows = await session.execute(
            select(ATTRIBUTES.c.name, ATTRIBUTES.c.type).where(
                ATTRIBUTES.c.workspace_id == workspace_id, ATTRIBUTES.c.name.in_(chunk)
            )
        )
        registered.update({name: AttrType(kind) for name, kind in rows})
    return registered


async def declare_attribute(
    runtime: Runtime, workspace_id: int, name: str, kind: AttrType
) -> AttributeType:
    """Declare a type before any value arrives (e.g. a code that looks like a number)."""
    try:
        check_name(name)
    except ValueProblem as exc:
        raise invalid({"name": exc.message}) from None
    async with runtime.writer() as session:
        registered = await register_types(session, workspace_id, {name: kind}, runtime.clock.now())
        if registered[name] is not kind:
            raise conflict(
                f"attribute {name!r} is already a {registered[name]} in this workspace; "
                "a type never changes once values exist",
                type=registered[name].value,
            )
        await session.commit()
        row = await session.get(AttributeType, (workspace_id, name))
        assert row is not None
        return row


async def list_attributes(session: AsyncSession, workspace_id: int) -> list[AttributeType]:
    rows = await session.scalars(
        select(AttributeType)
        .where(AttributeType.workspace_id == workspace_id)
        .order_by(AttributeType.name)
    )
    return list(rows)


def _typed_rows(
    rows: Sequence[ProfileRow | RowError], registry: dict[str, AttrType]
) -> tuple[list[dict[str, Any] | RowError], dict[str, AttrType]]:
    """Each row's attributes in stored form, or the row's error; and the new names' types.

    A new attribute takes the type of its first value in a row that is otherwise good, so a
    rejected row never decides a type.
    """
    pending: dict[str, AttrType] = {}
    typed: list[dict[str, Any] | RowError] = []
    for row in rows:
        if isinstance(row, RowError):
            typed.append(row)
            continue
        fresh: dict[str, AttrType] = {}
        try:
            if row.types is not None:
                stored = _check_types(row.attributes, row.types, registry, pending, fresh)
            else:
                stored = _check_values(row.attributes, registry, pending, fresh)
        except _Clash as clash:
            typed.append(RowError(clash.problem.code, clash.problem.message, clash.field))
            continue
        pending.update(fresh)
        typed.append(stored)
    return typed, pending


class _Clash(Exception):
    def __init__(self, name: str, problem: ValueProblem) -> None:
        self.field = f"attributes.{name}"
        self.problem = problem


def _check_values(
    attributes: dict[str, Any],
    registry: Mapping[str, AttrType],
    pending: Mapping[str, AttrType],
    fresh: dict[str, AttrType],
) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None:
            stored[name] = None  # removes the attribute
            continue
        try:
            declared = registry.get(name) or pending.get(name) or fresh.get(name)
            if declared is None:
                declared = fresh[name] = infer_type(name, value)
            stored[name] = check_value(name, value, declared)
        except ValueProblem as exc:
            raise _Clash(name, exc) from None
    return stored


def _check_types(
    attributes: dict[str, Any],
    types: Mapping[str, AttrType],
    registry: Mapping[str, AttrType],
    pending: Mapping[str, AttrType],
    fresh: dict[str, AttrType],
) -> dict[str, Any]:
    for name in attributes:
        kind = types[name]
        declared = registry.get(name) or pending.get(name) or fresh.get(name)
        if declared is None:
            fresh[name] = kind
        elif declared is not kind:
            # Another writer registered this name with another type since the column was read.
            raise _Clash(
                name,
                ValueProblem(
                    "type_clash",
                    f"attribute {name!r} is a {declared} in this workspace; this column holds "
                    f"{kind} values",
                ),
            )
    return attributes


# --- the batch upsert -----------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    """A profile as this batch leaves it."""

    id: int | None
    identity: str | None
    phone: str | None
    country: str | None
    attributes: dict[str, Any]
    timezone: str | None
    loaded_phone: str | None = None
    new: bool = False
    dirty: bool = False
    subscription: str | None = None
    rows: list[int] = field(default_factory=list)


# Called in the upsert's transaction with the ids of the profiles just written, so whatever
# reacts to a change (journeys entering a segment) commits or rolls back with it.
ProfileListener = Callable[[AsyncSession, int, Sequence[int]], Awaitable[None]]
_profile_listeners: list[ProfileListener] = []


def add_profile_listener(listener: ProfileListener) -> None:
    """Register ``listener`` for every profile upsert (API, CSV, journeys)."""
    if listener not in _profile_listeners:
        _profile_listeners.append(listener)


async def notify_profile_listeners(
    session: AsyncSession, workspace_id: int, profile_ids: Sequence[int]
) -> None:
    if profile_ids:
        for listener in _profile_listeners:
            await listener(session, workspace_id, profile_ids)


class _Retry(Exception):
    """Another writer created one of our new profiles meanwhile: redo the batch."""


async def upsert_api_rows(
    runtime: Runtime, workspace_id: int, raws: Sequence[Any]
) -> list[Outcome]:
    """An API batch: rows parsed outside the write transaction (phone parsing is the slow
    part), then upserted."""
    async with runtime.sessions() as session:
        settings = settings_of(await get_workspace(session, workspace_id))
    rows = [parse_profile_row(raw, settings.default_country) for raw in raws]
    return await upsert_profiles(runtime, workspace_id, rows, "api")


async def upsert_profiles(
    runtime: Runtime,
    workspace_id: int,
    rows: Sequence[ProfileRow | RowError],
    source: str,
) -> list[Outcome]:
    """Upsert a batch in its own transaction; one outcome per row, in order."""
    for _attempt in range(ATTEMPTS):
        try:
            async with runtime.writer() as session:
                outcomes = await upsert_rows(
                    session, runtime.clock.now(), workspace_id, rows, source
                )
                await session.commit()
                return outcomes
        except (_Retry, IntegrityError):
            continue
    raise conflict(
        "these profiles were being written by another request at the same moment; "
        "send the batch again"
    )


async def upsert_rows(  # public: journeys set attributes inside their own transaction
    session: AsyncSession,
    now: datetime,
    workspace_id: int,
    rows: Sequence[ProfileRow | RowError],
    source: str,
) -> list[Outcome]:
    await plan_each_run(session)
    settings = settings_of(await get_workspace(session, workspace_id))
    registry = await load_registry(session, workspace_id)
    typed, pending = _typed_rows(rows, registry)
    if pending:
        registered = await register_types(session, workspace_id, pending, now)
        if registered != pending:  # a concurrent batch registered a name first
            registry.update(registered)
            typed, _ = _typed_rows(rows, registry)

    by_identity, by_phone = await _load(session, workspace_id, rows)
    outcomes: list[Outcome | tuple[_State, str]] = []
    for row, attributes in zip(rows, typed, strict=True):
        if isinstance(row, RowError):
            outcomes.append(Outcome("error", error=row))
        elif isinstance(attributes, RowError):
            outcomes.append(Outcome("error", error=attributes))
        else:
            outcomes.append(_resolve(row, attributes, by_identity, by_phone))

    states = {id(o[0]): o[0] for o in outcomes if isinstance(o, tuple)}
    await _write(session, now, workspace_id, list(states.values()), settings, source)
    await notify_profile_listeners(
        session, workspace_id, [s.id for s in states.values() if s.id is not None]
    )
    return [
        outcome if isinstance(outcome, Outcome) else Outcome(outcome[1], outcome[0].id)
        for outcome in outcomes
    ]


def _resolve(
    row: ProfileRow,
    attributes: dict[str, Any],
    by_identity: dict[str, _State],
    by_phone: dict[str, _State],
) -> tuple[_State, str] | Outcome:
    """Apply one row to the batch's in-memory view: matched by identity, else by phone.
    A row that cannot apply is its error, and nothing of it is applied."""
    target = _match(row, by_identity, by_phone)
    if isinstance(target, Outcome):
        return target
    status = "updated"
    if target is None:
        target = _State(None, row.identity, row.phone, row.country, {}, None, new=True, dirty=True)
        status = "created"
    _apply(row, attributes, target, by_identity, by_phone)
    return target, status


def _match(
    row: ProfileRow, by_identity: dict[str, _State], by_phone: dict[str, _State]
) -> _State | Outcome | None:
    by_id = by_identity.get(row.identity) if row.identity else None
    by_ph = by_phone.get(row.phone) if row.phone else None
    if by_id is not None and by_ph is not None and by_id is not by_ph:
        return _phone_taken(row, by_ph)
    target = by_id or by_ph
    if target is not None and row.identity and target.identity not in (None, row.identity):
        return _phone_taken(row, target)
    if row.subscription and not (row.phone or (target is not None and target.phone)):
        return Outcome(
            "error",
            error=RowError(
                "no_phone",
                "subscription is held on the contact of the phone; give this profile a phone",
                "subscription",
            ),
        )
    return target


def _apply(
    row: ProfileRow,
    attributes: dict[str, Any],
    target: _State,
    by_identity: dict[str, _State],
    by_phone: dict[str, _State],
) -> None:
    target.dirty = True
    if row.identity and target.identity is None:
        target.identity = row.identity
    if row.phone and target.phone != row.phone:
        if target.phone is not None:
            by_phone.pop(target.phone, None)
        target.phone = row.phone
        target.country = row.country
    if target.identity:
        by_identity[target.identity] = target
    if target.phone:
        by_phone[target.phone] = target
    for name, value in attributes.items():
        if value is None:
            target.attributes.pop(name, None)
        else:
            target.attributes[name] = value
    if row.timezone_given:
        target.timezone = row.timezone
    if row.subscription is not None:
        target.subscription = row.subscription


def _phone_taken(row: ProfileRow, holder: _State) -> Outcome:
    if holder.identity:
        who = f"identity {holder.identity!r}"
    else:
        who = f"id {holder.id}" if holder.id else "made by an earlier row of this batch"
    return Outcome(
        "error",
        error=RowError(
            "phone_taken",
            f"phone {row.phone} belongs to another profile ({who}); change or remove it there "
            "first",
            "phone",
        ),
    )


async def _load(
    session: AsyncSession, workspace_id: int, rows: Sequence[ProfileRow | RowError]
) -> tuple[dict[str, _State], dict[str, _State]]:
    """The existing profiles the batch names, by identity and by phone (locked on PostgreSQL,
    so concurrent batches merge attributes one after the other)."""
    identities = sorted({r.identity for r in rows if isinstance(r, ProfileRow) and r.identity})
    phones = sorted({r.phone for r in rows if isinstance(r, ProfileRow) and r.phone})
    states: dict[int, _State] = {}
    columns = (
        PROFILES.c.id,
        PROFILES.c.identity,
        PROFILES.c.phone,
        PROFILES.c.country,
        PROFILES.c.attributes,
        PROFILES.c.timezone,
    )
    # One query per key, each on its unique index (an OR of both would make SQLite scan the
    # workspace's profiles).
    for key, values in ((PROFILES.c.identity, identities), (PROFILES.c.phone, phones)):
        for chunk in chunks(values, LOOKUP_CHUNK):
            query: Select[Any] = select(*columns).where(
                PROFILES.c.workspace_id == workspace_id, one_of(session, key, chunk)
            )
            if dialect_of(session) == "postgresql":
                query = query.with_for_update()
            for pid, identity, phone, country, attributes, timezone in await session.execute(query):
                if pid not in states:
                    states[pid] = _State(
                        pid,
                        identity,
                        phone,
                        country,
                        dict(attributes or {}),
                        timezone,
                        loaded_phone=phone,
                    )
    by_identity = {s.identity: s for s in states.values() if s.identity}
    by_phone = {s.phone: s for s in states.values() if s.phone}
    return by_identity, by_phone


async def _write(
    session: AsyncSession,
    now: datetime,
    workspace_id: int,
    states: list[_State],
    settings: WorkspaceSettings,
    source: str,
) -> None:
    moved = [s for s in states if not s.new and s.dirty and s.phone != s.loaded_phone]
    if any(s.loaded_phone for s in moved):
        # Free the old phones first, so two profiles may swap numbers in one batch.
        await session.execute(
            update(PROFILES)
            .where(PROFILES.c.id == bindparam("b_id"))
            .values(phone=None, country=None),
            [{"b_id": s.id} for s in moved if s.loaded_phone],
        )
    await _insert_new(session, now, workspace_id, [s for s in states if s.new])
    changed = [s for s in states if not s.new and s.dirty]
    if changed:
        await session.execute(
            update(PROFILES)
            .where(PROFILES.c.id == bindparam("b_id"))
            .values(
                identity=bindparam("b_identity"),
                phone=bindparam("b_phone"),
                country=bindparam("b_country"),
                attributes=bindparam("b_attributes"),
                timezone=bindparam("b_timezone"),
                updated_at=now,
            ),
            [
                {
                    "b_id": s.id,
                    "b_identity": s.identity,
                    "b_phone": s.phone,
                    "b_country": s.country,
                    "b_attributes": s.attributes,
                    "b_timezone": s.timezone,
                }
                for s in changed
            ],
        )
    await _link_contacts(session, now, workspace_id, states, moved, settings, source)


async def _insert_new(
    session: AsyncSession, now: datetime, workspace_id: int, new: list[_State]
) -> None:
    """Insert the batch's new profiles and learn their ids.

    Written through the driver with the values already in the database's form: SQLAlchemy's
    per-row parameter handling cost more than the database's own work (CSV imports write
    tens of thousands of rows a second). Values: the JSON text as the engine's serializer
    makes it (db/engine.py), the time as the column type binds it."""
    if not new:
        return
    connection = await session.connection()
    when = _bound(connection.dialect, PROFILES.c.created_at, now)
    found: list[Any] = []
    if connection.dialect.name == "postgresql":
        columns: tuple[list[Any], ...] = ([], [], [], [], [])
        for s in new:
            for column, value in zip(
                columns,
                (s.identity, s.phone, s.country, _json_text(s.attributes), s.timezone),
                strict=True,
            ):
                column.append(value)
        result = await connection.exec_driver_sql(
            _PG_INSERT_PROFILES, (workspace_id, when, *columns)
        )
        found.extend(result.all())
    else:
        for chunk in chunks(new, _SQLITE_ROWS):
            params: list[Any] = []
            for s in chunk:
                params += (
                    workspace_id,
                    s.identity,
                    s.phone,
                    s.country,
                    _json_text(s.attributes),
                    s.timezone,
                    when,
                    when,
                )
            result = await connection.exec_driver_sql(
                _sqlite_insert_profiles(len(chunk)), tuple(params)
            )
            found.extend(result.all())
    by_identity = {s.identity: s for s in new if s.identity}
    by_phone = {s.phone: s for s in new if s.phone}
    inserted = 0
    for pid, identity, phone in found:
        state = by_identity.get(identity) if identity else by_phone.get(phone)
        if state is not None:
            state.id = pid
            inserted += 1
    if inserted != len(new):
        raise _Retry()


_PROFILE_COLUMNS = (
    "workspace_id, identity, phone, country, attributes, timezone, created_at, updated_at"
)
_PG_INSERT_PROFILES = f"""
INSERT INTO profiles ({_PROFILE_COLUMNS})
SELECT $1::bigint, u.identity, u.phone, u.country, u.attributes::jsonb, u.timezone, $2::timestamptz,
    $2::timestamptz
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
    AS u(identity, phone, country, attributes, timezone)
ON CONFLICT DO NOTHING
RETURNING id, identity, phone
"""
_SQLITE_ROWS = 2000  # 8 values a row, well under SQLite's 32,766 variables


@lru_cache(maxsize=16)
def _sqlite_insert_profiles(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO profiles ({_PROFILE_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING "
        "RETURNING id, identity, phone"
    )


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _bound(dialect: Any, column: Any, value: Any) -> Any:
    """``value`` as ``column``'s type binds it for this database."""
    convert = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if convert is None else convert(value)


async def _link_contacts(
    session: AsyncSession,
    now: datetime,
    workspace_id: int,
    states: list[_State],
    moved: list[_State],
    settings: WorkspaceSettings,
    source: str,
) -> None:
    """Each phone's contact (made with the workspace's default subscription if new) points to
    its profile; a phone a profile left behind points nowhere; requested states are set."""
    insert = dialect_insert(session)
    with_phone = [s for s in states if s.phone]
    for chunk in chunks([s.id for s in with_phone], LOOKUP_CHUNK):
        # Made from the profiles' rows in the database: no value per row to send.
        made = select(
            PROFILES.c.workspace_id,
            PROFILES.c.phone,
            literal(settings.new_contact_subscription, String),
            literal("default", String),
            literal(now, UTCDateTime),
            PROFILES.c.id,
        ).where(one_of(session, PROFILES.c.id, chunk))
        statement = insert(CONTACTS).from_select(
            [
                "workspace_id",
                "phone",
                "subscription",
                "subscription_source",
                "created_at",
                "profile_id",
            ],
            made,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "phone"],
            set_={"profile_id": statement.excluded.profile_id},
        )
        await session.execute(statement)
    left = [s for s in moved if s.loaded_phone]
    if left:
        await session.execute(
            update(CONTACTS)
            .where(
                CONTACTS.c.workspace_id == workspace_id,
                CONTACTS.c.phone == bindparam("b_phone"),
                CONTACTS.c.profile_id == bindparam("b_id"),
            )
            .values(profile_id=None),
            [{"b_phone": s.loaded_phone, "b_id": s.id} for s in left],
        )
    asked = [s for s in with_phone if s.subscription]
    if asked:
        await session.execute(
            update(CONTACTS)
            .where(
                CONTACTS.c.workspace_id == workspace_id,
                CONTACTS.c.phone == bindparam("b_phone"),
                # A state asked for explicitly is recorded with its source, even when it is
                # what the default already gave.
                or_(
                    CONTACTS.c.subscription != bindparam("b_state"),
                    CONTACTS.c.subscription_source == "default",
                ),
            )
            .values(
                subscription=bindparam("b_state"),
                subscription_source=source,
                subscription_changed_at=now,
            ),
            [{"b_phone": s.phone, "b_state": s.subscription} for s in asked],
        )


# --- reading --------------------------------------------------------------------------------


async def get_profile(session: AsyncSession, workspace_id: int, profile_id: int) -> Profile:
    profile = await session.get(Profile, profile_id) if is_storable_id(profile_id) else None
    if profile is None or profile.workspace_id != workspace_id:
        raise not_found(f"profile {profile_id}")
    if profile.erased_at is not None:
        raise ApiError(
            410,
            "erased",
            f"profile {profile_id} was erased on {profile.erased_at:%Y-%m-%d %H:%M} UTC; "
            "its personal data is gone",
        )
    return profile


async def _subscriptions(
    session: AsyncSession, workspace_id: int, phones: Iterable[str]
) -> dict[str, SubscriptionOut]:
    found: dict[str, SubscriptionOut] = {}
    for chunk in chunks(sorted(set(phones))):
        rows = await session.execute(
            select(
                CONTACTS.c.phone,
                CONTACTS.c.subscription,
                CONTACTS.c.subscription_source,
                CONTACTS.c.subscription_changed_at,
            ).where(CONTACTS.c.workspace_id == workspace_id, CONTACTS.c.phone.in_(chunk))
        )
        for phone, state, source, changed in rows:
            found[phone] = SubscriptionOut(state=state, source=source, changed_at=changed)
    return found


async def profiles_out(
    session: AsyncSession, workspace_id: int, profiles: Sequence[Profile]
) -> list[ProfileOut]:
    subscriptions = await _subscriptions(
        session, workspace_id, [p.phone for p in profiles if p.phone]
    )
    return [
        ProfileOut(
            id=p.id,
            identity=p.identity,
            phone=p.phone,
            country=p.country,
            attributes=p.attributes or {},
            timezone=p.timezone,
            subscription=subscriptions.get(p.phone) if p.phone else None,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        for p in profiles
    ]


async def profiles_by_ids(
    session: AsyncSession, workspace_id: int, ids: Sequence[int]
) -> list[ProfileOut]:
    """The profiles of ``ids``, in that order."""
    found: dict[int, Profile] = {}
    for chunk in chunks(list(ids)):
        for profile in await session.scalars(select(Profile).where(Profile.id.in_(chunk))):
            found[profile.id] = profile
    ordered = [found[i] for i in ids if i in found]
    return await profiles_out(session, workspace_id, ordered)


async def list_profiles(
    session: AsyncSession,
    clock_now: datetime,
    workspace_id: int,
    phone: str | None,
    identity: str | None,
    attribute: str | None,
    value: str | None,
    cursor: str | None,
    limit: int,
) -> ProfilePage:
    query = select(Profile).where(Profile.workspace_id == workspace_id, Profile.erased_at.is_(None))
    if phone:
        settings = settings_of(await get_workspace(session, workspace_id))
        try:
            query = query.where(Profile.phone == normalize_phone(phone, settings.default_country))
        except InvalidPhone as exc:
            raise invalid({"phone": str(exc)}) from None
    if identity:
        query = query.where(Profile.identity == identity)
    if attribute is not None:
        query = query.where(
            await _attribute_filter(session, clock_now, workspace_id, attribute, value)
        )
    if cursor:
        if not cursor.isdigit() or not is_storable_id(int(cursor)):
            raise invalid({"cursor": "use the next_cursor of the previous page"})
        query = query.where(Profile.id < int(cursor))
    rows = list(await session.scalars(query.order_by(Profile.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return ProfilePage(
        items=await profiles_out(session, workspace_id, rows),
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


async def _attribute_filter(
    session: AsyncSession, now: datetime, workspace_id: int, name: str, value: str | None
) -> Any:
    """``?attribute=city&value=Pune``: equality, the text read as the attribute's type
    (without a value: profiles that have the attribute)."""
    registry = await load_registry(session, workspace_id)
    kind = registry.get(name)
    if kind is None:
        raise invalid({"attribute": f"unknown attribute {name!r} in this workspace"})
    if value is None:
        cond = AttributeCond(name, kind, "exists", True)
    else:
        try:
            parsed = parse_text(name, value, kind)
        except ValueProblem as exc:
            raise invalid({"value": exc.message}) from None
        if kind is AttrType.LIST:
            cond = AttributeCond(name, kind, "contains", value)
        else:
            cond = AttributeCond(name, kind, "eq", parsed)
    # Attribute conditions never need joins: the WHERE clause alone.
    return SegmentCompiler(dialect_of(session), workspace_id, now).condition(cond)


async def profile_detail(
    session: AsyncSession, workspace_id: int, profile_id: int, limit: int
) -> ProfileDetail:
    profile = await get_profile(session, workspace_id, profile_id)
    (out,) = await profiles_out(session, workspace_id, [profile])
    timeline = await _timeline(session, workspace_id, profile, limit)
    return ProfileDetail(**out.model_dump(), timeline=timeline)


async def _timeline(
    session: AsyncSession, workspace_id: int, profile: Profile, limit: int
) -> list[TimelineItem]:
    """Events, messages with their statuses, and inbound replies, newest first."""
    items: list[TimelineItem] = []
    events = await session.scalars(
        select(Event)
        .where(Event.profile_id == profile.id)
        .order_by(Event.ts.desc(), Event.id.desc())
        .limit(limit)
    )
    items.extend(
        TimelineItem(
            at=e.ts,
            kind="event",
            detail={"name": e.name, "properties": e.properties, "message_id": e.message_id},
        )
        for e in events
    )
    if profile.phone:
        messages = await session.scalars(
            select(Message)
            .where(Message.workspace_id == workspace_id, Message.to_phone == profile.phone)
            .order_by(Message.id.desc())
            .limit(limit)
        )
        items.extend(_message_item(m) for m in messages)
        contact_id = await session.scalar(
            select(Contact.id).where(
                Contact.workspace_id == workspace_id, Contact.phone == profile.phone
            )
        )
        if contact_id is not None:
            inbound = await session.scalars(
                select(InboundRecord)
                .where(InboundRecord.contact_id == contact_id)
                .order_by(InboundRecord.id.desc())
                .limit(limit)
            )
            items.extend(_inbound_item(r) for r in inbound)
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]


def _message_item(message: Message) -> TimelineItem:
    return TimelineItem(
        at=message.created_at,
        kind="message",
        detail={
            "id": message.id,
            "status": message.status,
            "template_id": message.template_id,
            "campaign_id": message.campaign_id,
            "source": message.source,
            "times": {
                "sent": message.sent_at,
                "delivered": message.delivered_at,
                "read": message.read_at,
                "failed": message.failed_at,
            },
            "error_code": message.error_code,
            "replied": message.replied_count,
            "clicked": message.clicked_count,
        },
    )


def _inbound_item(record: InboundRecord) -> TimelineItem:
    return TimelineItem(
        at=record.occurred_at or record.received_at,
        kind="inbound",
        detail={
            "id": record.id,
            "type": record.type,
            "text": record.text,
            "button_payload": record.button_payload,
            "button_text": record.button_text,
            "reply_to_message_id": record.reply_to_message_id,
            "action": record.action,
        },
    )


# --- helpers --------------------------------------------------------------------------------


async def plan_each_run(session: AsyncSession) -> None:
    """For a transaction whose lookups take up to 1,000 parameters, batch after batch: after
    five runs of one statement PostgreSQL may switch to a generic plan that scans the table
    comparing each row with every parameter (seconds per batch at a million profiles)."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def one_of(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values`` with one parameter instead of a thousand to send, parse and plan
    (a batch's lookups took 30 ms in IN form): ``= ANY(array)`` on PostgreSQL, ``IN (SELECT
    value FROM json_each(json array))`` on SQLite (which probes the index once per value)."""
    if dialect_of(session) != "postgresql":
        if len(values) < ONE_OF_FROM:
            return column.in_(values)
        listed = literal(orjson.dumps(list(values)).decode(), Text)
        return column.in_(select(literal_column("value")).select_from(func.json_each(listed)))
    kind = BigInteger() if isinstance(column.type, BigInteger | Integer) else Text()
    return column == any_(literal(list(values), ARRAY(kind)))


# Below this many values a plain IN (...) costs less than the JSON array.
ONE_OF_FROM = 20


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def dialect_insert(session: AsyncSession) -> Any:
    return pg_insert if dialect_of(session) == "postgresql" else sqlite_insert


def chunks(values: Sequence[Any], size: int = IN_CLAUSE) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
