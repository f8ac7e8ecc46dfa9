"""Attribute types: what a value is, how it is stored, and when it clashes.

Each attribute name has one type per workspace (string, number, boolean, date, list of
strings), set by its first value or declared up front, then enforced: a value of another type is
that row's error, never a silent cast. Dates are stored as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole
seconds, fixed width) so that comparing the stored text compares the times, on both databases.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any


class AttrType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    LIST = "list"


class ValueProblem(ValueError):
    """A value that does not fit; the message names the attribute and says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


NAME_MAX = 100
# Within JavaScript's safe integers every client, and both databases, read a number exactly.
MAX_SAFE_INT = 2**53 - 1
_BAD_NAME = re.compile(r'["\\\x00-\x1f\x7f]')
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_NUMBER_TEXT = re.compile(r"^[+-]?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_WHAT = {
    AttrType.STRING: "strings",
    AttrType.NUMBER: "numbers",
    AttrType.BOOLEAN: "booleans (true/false)",
    AttrType.DATE: "dates (ISO 8601, e.g. 2024-05-01 or 2024-05-01T10:30:00+05:30)",
    AttrType.LIST: "lists of strings",
}


def check_name(name: str, what: str = "attribute") -> str:
    """An attribute or property name: 1 to 100 characters, no quotes or control characters
    (they would break the JSON paths that segments compile to)."""
    if not name or len(name) > NAME_MAX:
        raise ValueProblem("invalid_name", f"{what} names are 1 to {NAME_MAX} characters")
    if _BAD_NAME.search(name):
        raise ValueProblem(
            "invalid_name",
            f"{what} name {name!r} contains a quote, backslash or control character",
        )
    return name


def describe(value: Any) -> str:
    """A short description of a value for error messages."""
    kind = {bool: "a boolean", int: "a number", float: "a number", str: "the string"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}" if not isinstance(value, (list, dict)) else kind


# --- dates ----------------------------------------------------------------------------------


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date or date-time as an aware UTC datetime, or None if it is not one.

    A date alone is midnight UTC; a time without an offset is UTC.
    """
    if not isinstance(text, str) or not _ISO_DATE.match(text.strip()):
        return None
    raw = text.strip()
    try:
        if len(raw) == 10:
            parsed = datetime.combine(date.fromisoformat(raw), time(0), UTC)
        else:
            parsed = datetime.fromisoformat(raw.replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def is_date_only(text: str) -> bool:
    return isinstance(text, str) and len(text.strip()) == 10 and parse_datetime(text) is not None


def canonical_date(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``: fixed width, so text order is time order."""
    at = moment.astimezone(UTC)
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}Z"
    )


# --- JSON values (the API) ------------------------------------------------------------------


def infer_type(name: str, value: Any) -> AttrType:
    """The type a first value gives a new attribute."""
    if isinstance(value, bool):
        return AttrType.BOOLEAN
    if isinstance(value, (int, float)):
        return AttrType.NUMBER
    if isinstance(value, str):
        return AttrType.DATE if parse_datetime(value) is not None else AttrType.STRING
    if isinstance(value, list):
        return AttrType.LIST
    raise ValueProblem(
        "invalid_value",
        f"attribute {name!r}: values are strings, numbers, booleans, dates or lists of "
        f"strings; got {describe(value)}",
    )


def check_value(name: str, value: Any, declared: AttrType) -> Any:
    """The stored form of ``value`` for an attribute of type ``declared``; raises on a clash."""
    stored = _stored(value, declared)
    if stored is _CLASH:
        raise ValueProblem(
            "type_clash",
            f"attribute {name!r} holds {_WHAT[declared]} in this workspace; got {describe(value)}",
        )
    return stored


_CLASH: Any = object()


def _stored(value: Any, declared: AttrType) -> Any:
    if declared is AttrType.STRING:
        return _text(value) if isinstance(value, str) else _CLASH
    if declared is AttrType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _CLASH
        return _number(value)
    if declared is AttrType.BOOLEAN:
        return value if isinstance(value, bool) else _CLASH
    if declared is AttrType.DATE:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        return canonical_date(parsed) if parsed is not None else _CLASH
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [_text(item) for item in value]
    return _CLASH


def _number(value: int | float) -> int | float:
    if isinstance(value, int) and abs(value) > MAX_SAFE_INT:
        raise ValueProblem(
            "invalid_value", f"{value} is beyond ±{MAX_SAFE_INT}, the largest exact integer"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem("invalid_value", "numbers must be finite")
    return value


def _text(value: str) -> str:
    # PostgreSQL cannot store NUL in text or JSONB; refuse it the same way on both databases.
    if "\x00" in value:
        raise ValueProblem("invalid_value", "text may not contain the NUL character (\\u0000)")
    return value


# --- CSV text -------------------------------------------------------------------------------

LIST_SEPARATOR = "|"
INFER_SHARE = 0.8
_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}


def parse_text(name: str, text: str, declared: AttrType) -> Any:
    """A CSV cell as a value of ``declared``: CSV has no types, so this parses, it does not
    cast; text that is not of the type is the row's error."""
    if declared is AttrType.STRING:
        return _text(text)
    if declared is AttrType.NUMBER:
        number = parse_number(text)
        if number is None:
            raise ValueProblem(
                "type_clash",
                f"attribute {name!r} holds numbers in this workspace; {text!r} is not a number",
            )
        return number
    if declared is AttrType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueProblem(
            "type_clash",
            f"attribute {name!r} holds booleans in this workspace; {text!r} is not true/false",
        )
    if declared is AttrType.DATE:
        parsed = parse_datetime(text)
        if parsed is None:
            raise ValueProblem(
                "type_clash",
                f"attribute {name!r} holds dates in this workspace; {text!r} is not an ISO "
                "8601 date",
            )
        return canonical_date(parsed)
    return [_text(item.strip()) for item in text.split(LIST_SEPARATOR) if item.strip()]


def parse_number(text: str) -> int | float | None:
    raw = text.strip()
    if not _NUMBER_TEXT.match(raw):
        return None
    if "." not in raw and "e" not in raw.lower():
        whole = int(raw)
        return whole if abs(whole) <= MAX_SAFE_INT else None
    number = float(raw)
    return number if math.isfinite(number) else None


def infer_text_type(values: list[str]) -> AttrType:
    """The type of a CSV column from its cells: the first of number, boolean (true/false),
    date that at least 4 in 5 cells are, else string. A code like ``0411`` is not a number.
    The cells that do not fit become row errors (a typo is reported, it does not turn a
    column of numbers into text for good)."""
    need = max(1, math.ceil(len(values) * INFER_SHARE))
    tests: list[tuple[AttrType, Any]] = [
        (AttrType.NUMBER, lambda v: parse_number(v) is not None),
        (AttrType.BOOLEAN, lambda v: v.strip().lower() in ("true", "false")),
        (AttrType.DATE, lambda v: parse_datetime(v) is not None),
    ]
    for kind, fits in tests:
        if sum(1 for value in values if fits(value)) >= need:
            return kind
    return AttrType.STRING
