"""Segment definitions compiled to one SQL query, the same semantics on SQLite and PostgreSQL.

Every condition compiles to a two-valued expression (true or false, never NULL), so that
``not`` negates exactly and "a missing attribute makes every comparison false" holds under
``not`` too: each comparison is guarded by the value's presence (FALSE AND NULL is FALSE).

The databases read JSON differently, so the few dialect-specific pieces sit behind ``_Json``:
SQLite's ``json_extract`` / ``json_type`` / ``json_each`` and PostgreSQL's ``->`` / ``->>`` /
``jsonb_typeof`` / ``@>``. Strings are ordered by code point on both (SQLite compares bytes;
PostgreSQL is told ``COLLATE "C"``, since its default collation orders by language rules).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import Table
from sqlalchemy.types import Text

from waconnect.messaging.models import Contact
from waconnect.profiles.attributes import AttrType, canonical_date
from waconnect.profiles.definition import (
    AllOf,
    AnyOf,
    AttributeCond,
    CountryCond,
    EventCond,
    Node,
    NotOf,
    PropertyCond,
    SubscriptionCond,
    truncate_now,
    window,
)
from waconnect.profiles.models import Event, Profile

PROFILES = cast(Table, Profile.__table__)
EVENTS = cast(Table, Event.__table__)
CONTACTS = cast(Table, Contact.__table__)

Column = ColumnElement[Any]
Condition = ColumnElement[bool]

_COMPARE: dict[str, Callable[[Column, Any], Condition]] = {
    "eq": lambda x, v: x == v,
    "ne": lambda x, v: x != v,
    "lt": lambda x, v: x < v,
    "le": lambda x, v: x <= v,
    "gt": lambda x, v: x > v,
    "ge": lambda x, v: x >= v,
}


class _Json:
    """Reading one key of a JSON object column; one subclass per database."""

    def present(self, column: Column, name: str) -> Condition:
        raise NotImplementedError

    def is_kind(self, column: Column, name: str, kind: str) -> Condition:
        """kind: string | number | boolean | array."""
        raise NotImplementedError

    def text(self, column: Column, name: str) -> Column:
        """A string value, ordered by code point."""
        raise NotImplementedError

    def number(self, column: Column, name: str) -> Column:
        raise NotImplementedError

    def number_value(self, value: int | float) -> Any:
        return value

    def is_bool(self, column: Column, name: str, value: bool) -> Condition:
        raise NotImplementedError

    def substring(self, haystack: Column, needle: str) -> Condition:
        raise NotImplementedError

    def has_element(self, column: Column, name: str, value: str) -> Condition:
        """The value is an array holding the string ``value``."""
        raise NotImplementedError


_SQLITE_KINDS = {
    "string": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
    "array": ("array",),
}


class _SqliteJson(_Json):
    @staticmethod
    def _path(name: str) -> Any:
        # Names never hold quotes or backslashes (attributes.check_name).
        return literal(f'$."{name}"')

    def present(self, column: Column, name: str) -> Condition:
        return func.json_type(column, self._path(name)).is_not(None)

    def is_kind(self, column: Column, name: str, kind: str) -> Condition:
        # coalesce: a missing key must give false, not NULL (see the module's docstring).
        found = func.coalesce(func.json_type(column, self._path(name)), "")
        return found.in_(_SQLITE_KINDS[kind])

    def text(self, column: Column, name: str) -> Column:
        return func.json_extract(column, self._path(name))

    def number(self, column: Column, name: str) -> Column:
        return func.json_extract(column, self._path(name))

    def is_bool(self, column: Column, name: str, value: bool) -> Condition:
        found = func.coalesce(func.json_type(column, self._path(name)), "")
        return found == ("true" if value else "false")

    def substring(self, haystack: Column, needle: str) -> Condition:
        # instr is case-sensitive; LIKE would fold ASCII case.
        return func.instr(haystack, literal(needle)) > 0

    def has_element(self, column: Column, name: str, value: str) -> Condition:
        each = func.json_each(column, self._path(name)).table_valued("value", "type")
        member = exists(
            select(literal(1)).select_from(each).where(each.c.type == "text", each.c.value == value)
        )
        # json_each over a plain string yields the string itself: ask for an array first.
        return and_(self.is_kind(column, name, "array"), member)


class _PostgresJson(_Json):
    @staticmethod
    def _value(column: Column, name: str) -> Column:
        return column.op("->", return_type=JSONB)(literal(name, Text))

    def present(self, column: Column, name: str) -> Condition:
        return self._value(column, name).is_not(None)

    def is_kind(self, column: Column, name: str, kind: str) -> Condition:
        return func.coalesce(func.jsonb_typeof(self._value(column, name)), "") == kind

    def text(self, column: Column, name: str) -> Column:
        return column.op("->>", return_type=Text)(literal(name, Text)).collate("C")

    def number(self, column: Column, name: str) -> Column:
        # jsonb numbers compare as numbers (exact decimals); no cast that could fail.
        return self._value(column, name)

    def number_value(self, value: int | float) -> Any:
        return sa_cast(literal(orjson.dumps(value).decode(), Text), JSONB)

    def is_bool(self, column: Column, name: str, value: bool) -> Condition:
        found = self._value(column, name) == sa_cast(literal("true" if value else "false"), JSONB)
        return func.coalesce(found, false())

    def substring(self, haystack: Column, needle: str) -> Condition:
        return func.strpos(haystack, literal(needle, Text)) > 0

    def has_element(self, column: Column, name: str, value: str) -> Condition:
        element = func.jsonb_build_array(literal(value, Text))
        return and_(
            self.is_kind(column, name, "array"),
            self._value(column, name).op("@>", return_type=JSONB)(element),
        )


def json_reader(dialect: str) -> _Json:
    return _PostgresJson() if dialect == "postgresql" else _SqliteJson()


class SegmentCompiler:
    """Turns a parsed definition into a WHERE clause over ``profiles`` (and, on PostgreSQL,
    the event counts it needs, joined to ``profiles``: see ``from_clause``)."""

    def __init__(self, dialect: str, workspace_id: int, now: datetime) -> None:
        self.dialect = dialect
        self.workspace_id = workspace_id
        self.counted: list[Any] = []
        self.json = json_reader(dialect)
        # Events compare with the clock's very moment (one recorded just now is "in the last
        # day"); attribute dates, stored to the second, with the clock to the second.
        self.now = now
        self.now_seconds = truncate_now(now)

    def condition(self, node: Node) -> Condition:
        if isinstance(node, AllOf):
            return and_(true(), *(self.condition(item) for item in node.items))
        if isinstance(node, AnyOf):
            return or_(false(), *(self.condition(item) for item in node.items))
        if isinstance(node, NotOf):
            return not_(self.condition(node.item))
        if isinstance(node, AttributeCond):
            return self.attribute(node)
        if isinstance(node, EventCond):
            return self.event(node)
        if isinstance(node, SubscriptionCond):
            return self.subscription(node)
        if isinstance(node, CountryCond):
            return and_(
                PROFILES.c.country.is_not(None), PROFILES.c.country.in_(list(node.countries))
            )
        raise TypeError(f"not a segment condition: {node!r}")

    # --- attributes ----------------------------------------------------------------------

    def attribute(self, cond: AttributeCond) -> Condition:
        column, name, json = PROFILES.c.attributes, cond.name, self.json
        present = json.present(column, name)
        if cond.op == "exists":
            return present if cond.value else not_(present)
        if cond.type is AttrType.LIST:  # contains is the only other list operator
            return json.has_element(column, name, cond.value)
        if cond.type is AttrType.BOOLEAN:
            return and_(present, self._boolean(column, name, cond.op, cond.value))
        value_of, read = self._reader(cond.type, column, name)
        if cond.op == "contains":
            return and_(present, json.substring(read, cond.value))
        if cond.op == "in":
            if not cond.value:
                return false()
            return and_(present, read.in_([value_of(item) for item in cond.value]))
        if cond.op == "within_days":
            start = canonical_date(self.now_seconds - timedelta(days=cond.value))
            return and_(present, read >= start, read <= canonical_date(self.now_seconds))
        op = {"before": "lt", "after": "gt"}.get(cond.op, cond.op)
        return and_(present, _COMPARE[op](read, value_of(cond.value)))

    def _reader(self, kind: AttrType, column: Column, name: str) -> tuple[Any, Column]:
        if kind is AttrType.NUMBER:
            return self.json.number_value, self.json.number(column, name)
        # Strings, and dates stored as fixed-width UTC text (attributes.canonical_date).
        return (lambda value: value), self.json.text(column, name)

    def _boolean(self, column: Column, name: str, op: str, value: Any) -> Condition:
        if op == "in":
            options = set(value)
            if not options:
                return false()
            return or_(*(self.json.is_bool(column, name, option) for option in sorted(options)))
        matched = self.json.is_bool(column, name, value)
        return matched if op == "eq" else not_(matched)

    # --- events --------------------------------------------------------------------------

    def event(self, cond: EventCond) -> Condition:
        matching = [EVENTS.c.name == cond.name]
        start, end = window(cond, self.now)
        if start is not None:
            matching.append(EVENTS.c.ts >= start)
        if end is not None:
            matching.append(EVENTS.c.ts <= end)
        matching.extend(self.property(item) for item in cond.where)
        mine = [EVENTS.c.profile_id == PROFILES.c.id, *matching]
        if not cond.did:
            return not_(exists(select(literal(1)).select_from(EVENTS).where(*mine)))
        if cond.min_count <= 1 and cond.max_count is None:
            if cond.min_count == 0:
                return true()
            # A semi-join: PostgreSQL plans it as one join over the events it needs.
            return exists(select(literal(1)).select_from(EVENTS).where(*mine))
        count = self._count(matching)
        bounds = [count >= cond.min_count]
        if cond.max_count is not None:
            bounds.append(count <= cond.max_count)
        return and_(*bounds)

    def _count(self, matching: list[Condition]) -> Column:
        """How many of a profile's events match, never NULL."""
        if self.dialect != "postgresql":
            # SQLite: one probe per profile on (profile_id, name, ts).
            mine = [EVENTS.c.profile_id == PROFILES.c.id, *matching]
            return select(func.count()).select_from(EVENTS).where(*mine).scalar_subquery()
        # PostgreSQL cannot flatten a correlated count; counted once per profile in one
        # grouped pass over the matching events and joined, it is a hash join instead of a
        # subquery per profile (and stays negatable anywhere: coalesce makes it 0, not NULL).
        counted = (
            select(EVENTS.c.profile_id, func.count().label("n"))
            .where(EVENTS.c.workspace_id == self.workspace_id, *matching)
            .group_by(EVENTS.c.profile_id)
            .subquery(f"event_count_{len(self.counted)}")
        )
        self.counted.append(counted)
        return func.coalesce(counted.c.n, 0)

    def from_clause(self) -> Any:
        """``profiles``, with the event counts the conditions compiled so far need."""
        joined: Any = PROFILES
        for counted in self.counted:
            joined = joined.outerjoin(counted, counted.c.profile_id == PROFILES.c.id)
        return joined

    def property(self, cond: PropertyCond) -> Condition:
        column, name, json = EVENTS.c.properties, cond.name, self.json
        if cond.op == "exists":
            present = json.present(column, name)
            return present if cond.value else not_(present)
        if cond.op == "contains":
            as_text = and_(
                json.is_kind(column, name, "string"),
                json.substring(json.text(column, name), cond.value),
            )
            return or_(as_text, json.has_element(column, name, cond.value))
        if cond.op == "in":
            if not cond.value:
                return false()
            return or_(*(self._property_compare(name, "eq", item) for item in cond.value))
        return self._property_compare(name, cond.op, cond.value)

    def _property_compare(self, name: str, op: str, value: Any) -> Condition:
        """A comparison with a property of the value's own JSON type; other types: false."""
        column, json = EVENTS.c.properties, self.json
        if isinstance(value, bool):
            kind = json.is_kind(column, name, "boolean")
            matched = json.is_bool(column, name, value)
            return and_(kind, matched if op == "eq" else not_(matched))
        if isinstance(value, str):
            read, bound = json.text(column, name), value
            kind = json.is_kind(column, name, "string")
        else:
            read, bound = json.number(column, name), json.number_value(value)
            kind = json.is_kind(column, name, "number")
        return and_(kind, _COMPARE[op](read, bound))

    # --- subscription --------------------------------------------------------------------

    def subscription(self, cond: SubscriptionCond) -> Condition:
        # A profile without a phone has no contact, so it is in neither state.
        return exists(
            select(literal(1))
            .select_from(CONTACTS)
            .where(
                CONTACTS.c.workspace_id == PROFILES.c.workspace_id,
                CONTACTS.c.phone == PROFILES.c.phone,
                CONTACTS.c.subscription == cond.state,
            )
        )


def _scope(workspace_id: int) -> list[Condition]:
    return [PROFILES.c.workspace_id == workspace_id, PROFILES.c.erased_at.is_(None)]


def count_query(node: Node, dialect: str, workspace_id: int, now: datetime) -> Select[Any]:
    compiler = SegmentCompiler(dialect, workspace_id, now)
    where = compiler.condition(node)
    return (
        select(func.count()).select_from(compiler.from_clause()).where(*_scope(workspace_id), where)
    )


def ids_query(
    node: Node, dialect: str, workspace_id: int, now: datetime, limit: int | None = None
) -> Select[Any]:
    """Matching profile ids, newest first."""
    compiler = SegmentCompiler(dialect, workspace_id, now)
    where = compiler.condition(node)
    query = (
        select(PROFILES.c.id)
        .select_from(compiler.from_clause())
        .where(*_scope(workspace_id), where)
        .order_by(PROFILES.c.id.desc())
    )
    return query.limit(limit) if limit is not None else query
