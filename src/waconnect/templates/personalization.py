"""Personalization: the one mapping from a template's variables to each recipient's values.

Test sends, campaigns and journeys all fill templates the same way. A mapping names each
variable by its place in the template and says where its value comes from::

    {
        "body.1": {"attribute": "first_name", "default": "there"},
        "body.order_id": {"event_property": "order_id"},          # named variable
        "header.1": {"literal": "Your order"},
        "header.media": {"literal": {"link": "https://x/y.pdf", "filename": "y.pdf"}},
        "header.location": {"literal": {"latitude": 12.9, "longitude": 77.6}},
        "buttons.0.1": {"attribute": "tracking_code"},             # button 0, variable 1
        "lto.expiration": {"attribute": "offer_ends"},
        "cards.1.body.1": {"literal": "20%"},                      # carousel card 1 (0-based)
        "cards.1.header.media": {"literal": "https://x/card1.jpg"},
    }

Keys (buttons and cards are 0-based, as WhatsApp's ``index`` and ``card_index``; variables are
the names inside the braces, ``{{1}}`` or ``{{first_name}}``):

- ``body.<var>``, ``header.<var>`` — text variables;
- ``header.media`` — ``{link, filename?}`` or a URL, for IMAGE / VIDEO / DOCUMENT / GIF headers;
- ``header.location`` — ``{latitude, longitude, name?, address?}`` for LOCATION headers;
- ``buttons.<i>.<var>`` — a dynamic URL's suffix, or a COPY_CODE button's code (``.1``);
- ``buttons.<i>.payload`` — optional: a quick reply's payload (WhatsApp uses the label without);
- ``lto.expiration`` — a limited-time offer's end (epoch ms or seconds, or an ISO date);
- ``cards.<k>.header.media``, ``cards.<k>.body.<var>``, ``cards.<k>.buttons.<i>.<var>`` and
  ``cards.<k>.buttons.<i>.payload`` — the same inside carousel card ``k``;
- authentication templates take ``body.1``, the one-time code, which also fills the OTP button.

Each value is ``{"literal": …}``, ``{"attribute": name}`` or ``{"event_property": name}`` (only
where an event started the send), with an optional ``"default"``. A recipient whose value is
missing (absent, null, blank) with no default raises :class:`MissingVariable`: the recipient
is skipped with ``missing_variable:<key>``, never sent a blank.

``compile_mapping`` checks the mapping against the template once (unknown keys, bad sources,
variables without an entry — all reported together); the :class:`Personalizer` it returns then
fills one recipient at a time without re-checking, so it is cheap inside a campaign's loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache, partial
from typing import Any
from urllib.parse import quote

from waconnect.templates.render import placeholders as _scan_placeholders
from waconnect.templates.render import render_template
from waconnect.web.errors import ApiError

__all__ = [
    "MappingError",
    "MissingVariable",
    "Personalizer",
    "Slot",
    "compile_mapping",
    "example_mapping",
    "format_value",
    "mapping_error_response",
    "template_slots",
]

SOURCES = ("literal", "attribute", "event_property")
_MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document", "GIF": "video"}
# Epoch values below this are seconds (the year 5138 in seconds; 1973 in milliseconds).
_MS_THRESHOLD = 100_000_000_000
# Characters left as they are in a dynamic URL suffix: path and query punctuation, and "%"
# so an already-encoded value is not encoded twice. WhatsApp wants the rest percent-encoded.
_URL_SAFE = "/?&=%#+,;@!$'()*[]"
_KEY_HINT = (
    "keys look like body.1, body.first_name, header.1, header.media, header.location, "
    "buttons.0.1, lto.expiration, cards.0.body.1, cards.0.header.media"
)


@lru_cache(maxsize=4096)
def placeholders(text: str) -> tuple[str, ...]:
    """The variables of ``text`` in order; cached, since every recipient asks again."""
    return tuple(_scan_placeholders(text))


class MappingError(ValueError):
    """The mapping itself is wrong; ``problems`` maps each key path to what is wrong with it."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems: dict[str, str] = dict(problems)
        summary = "; ".join(f"{key}: {why}" for key, why in self.problems.items())
        super().__init__(f"the personalization mapping is not usable: {summary}")


class MissingVariable(Exception):
    """A recipient has no value for ``key`` and the mapping gives no default."""

    def __init__(self, key: str, detail: str = "") -> None:
        self.key = key
        self.reason = f"missing_variable:{key}"
        super().__init__(f"{self.reason}{': ' + detail if detail else ''}")


def mapping_error_response(exc: MappingError, field: str = "mapping") -> ApiError:
    """A 422 naming each key that is wrong (``fields``: ``mapping.<key>`` -> reason)."""
    fields = {f"{field}.{key}" if field else key: why for key, why in exc.problems.items()}
    count = len(fields)
    summary = "; ".join(f"{key}: {why}" for key, why in fields.items())
    return ApiError(
        422,
        "invalid_mapping",
        f"the {field or 'mapping'} has {count} problem{'s' if count > 1 else ''}: {summary}",
        fields=fields,
    )


# --- what a template needs ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """One value a send of the template needs (or, if ``optional``, may take).

    ``kind`` is ``text``, ``media``, ``location``, ``expiration``, ``coupon`` or ``payload``.
    """

    key: str
    kind: str
    describe: str
    optional: bool = False


def _upper(value: Any) -> str:
    return str(value or "").upper()


def _component(components: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    for component in components:
        given = component.get("type")
        # Stored definitions are normalized (upper case): compare before converting.
        if given == kind or (isinstance(given, str) and given.upper() == kind):
            return component
    return None


def _components(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in definition.get("components") or () if isinstance(c, Mapping)]


def _is_authentication(definition: Mapping[str, Any]) -> bool:
    return _upper(definition.get("category")) == "AUTHENTICATION"


def template_slots(definition: Mapping[str, Any]) -> list[Slot]:
    """Every value a send of ``definition`` needs or may take, in the template's order."""
    components = _components(definition)
    if _is_authentication(definition):
        return [Slot("body.1", "text", "the one-time code (it also fills the OTP button)")]
    slots = _part_slots(components, "")
    offer = _component(components, "LIMITED_TIME_OFFER")
    if offer is not None:
        inner = offer.get("limited_time_offer")
        inner = inner if isinstance(inner, Mapping) else offer
        if inner.get("has_expiration"):
            slots.append(Slot("lto.expiration", "expiration", "when the offer ends"))
    carousel = _component(components, "CAROUSEL")
    if carousel is not None:
        for k, card in enumerate(carousel.get("cards") or ()):
            if isinstance(card, Mapping):
                parts = [c for c in card.get("components") or () if isinstance(c, Mapping)]
                slots.extend(_part_slots(parts, f"cards.{k}."))
    return slots


def _part_slots(components: Sequence[Mapping[str, Any]], prefix: str) -> list[Slot]:
    slots: list[Slot] = []
    header = _component(components, "HEADER")
    if header is not None:
        fmt = _upper(header.get("format") or "TEXT")
        if fmt == "TEXT":
            for name in placeholders(str(header.get("text") or "")):
                slots.append(
                    Slot(f"{prefix}header.{name}", "text", f"{{{{{name}}}}} of the header")
                )
        elif fmt in _MEDIA_FORMATS:
            slots.append(Slot(f"{prefix}header.media", "media", f"the {fmt.lower()} of the header"))
        elif fmt == "LOCATION":
            slots.append(Slot(f"{prefix}header.location", "location", "the header's location"))
    body = _component(components, "BODY")
    if body is not None:
        for name in placeholders(str(body.get("text") or "")):
            slots.append(Slot(f"{prefix}body.{name}", "text", f"{{{{{name}}}}} of the body"))
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons") or ()):
        if not isinstance(button, Mapping):
            continue
        kind = _upper(button.get("type"))
        where = f"{prefix}buttons.{index}"
        if kind == "URL":
            for name in placeholders(str(button.get("url") or "")):
                slots.append(Slot(f"{where}.{name}", "text", f"the URL suffix of button {index}"))
        elif kind == "COPY_CODE":
            slots.append(Slot(f"{where}.1", "coupon", f"the code button {index} copies"))
        elif kind == "QUICK_REPLY":
            slots.append(
                Slot(f"{where}.payload", "payload", f"quick reply {index}'s payload", True)
            )
    return slots


def example_mapping(definition: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Literal entries from the template's own sample values, for the keys that have one.

    Test sends fill what a user leaves unmapped with these ("show me this template"); media
    samples count only when they are links (an upload handle cannot be sent).
    """
    components = _components(definition)
    found: dict[str, Any] = {}
    if _is_authentication(definition):
        body = _component(components, "BODY") or {}
        found.update(_text_examples(body, "body", "body_text", named=False))
        return {key: {"literal": value} for key, value in found.items() if key == "body.1"}
    named = str(definition.get("parameter_format") or "").lower() == "named"
    found.update(_part_examples(components, "", named))
    carousel = _component(components, "CAROUSEL")
    for k, card in enumerate((carousel or {}).get("cards") or ()):
        if isinstance(card, Mapping):
            parts = [c for c in card.get("components") or () if isinstance(c, Mapping)]
            found.update(_part_examples(parts, f"cards.{k}.", named))
    return {key: {"literal": value} for key, value in found.items()}


def _part_examples(
    components: Sequence[Mapping[str, Any]], prefix: str, named: bool
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    header = _component(components, "HEADER")
    if header is not None:
        fmt = _upper(header.get("format") or "TEXT")
        if fmt == "TEXT":
            found.update(_text_examples(header, f"{prefix}header", "header_text", named))
        elif fmt in _MEDIA_FORMATS:
            handles = (header.get("example") or {}).get("header_handle")
            handle = handles[0] if isinstance(handles, list) and handles else handles
            if isinstance(handle, str) and re.match(r"https?://\S+$", handle):
                found[f"{prefix}header.media"] = handle
    body = _component(components, "BODY")
    if body is not None:
        found.update(_text_examples(body, f"{prefix}body", "body_text", named))
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons") or ()):
        if not isinstance(button, Mapping):
            continue
        example = button.get("example")
        example = example[0] if isinstance(example, list) and example else example
        if not isinstance(example, str | int) or not str(example).strip():
            continue
        kind = _upper(button.get("type"))
        if kind == "COPY_CODE":
            found[f"{prefix}buttons.{index}.1"] = str(example)
        elif kind == "URL":
            url = str(button.get("url") or "")
            names = placeholders(url)
            if names:
                # WhatsApp's sample is the whole URL; the send takes only the variable part.
                start = url.split("{{", 1)[0]
                sample = str(example)
                found[f"{prefix}buttons.{index}.{names[0]}"] = sample.removeprefix(start) or sample
    return found


def _text_examples(
    component: Mapping[str, Any], where: str, key: str, named: bool
) -> dict[str, Any]:
    example = component.get("example")
    if not isinstance(example, Mapping):
        return {}
    text = str(component.get("text") or "")
    names = placeholders(text) or (("1",) if where.endswith("body") else ())
    if named:
        params = example.get(f"{key}_named_params") or ()
        given = {
            str(p.get("param_name")): p.get("example") for p in params if isinstance(p, Mapping)
        }
        return {f"{where}.{n}": given[n] for n in names if format_value(given.get(n))}
    values = example.get(key)
    if isinstance(values, list) and values and isinstance(values[0], list):
        values = values[0]
    if not isinstance(values, list):
        return {}
    found = {}
    for name in names:
        if name.isdigit() and 0 < int(name) <= len(values) and format_value(values[int(name) - 1]):
            found[f"{where}.{name}"] = values[int(name) - 1]
    return found


# --- sources ------------------------------------------------------------------------------------

Getter = Callable[[Mapping[str, Any], Mapping[str, Any] | None], Any]


@dataclass(frozen=True, slots=True)
class _Entry:
    slot: Slot
    source: str
    name: str | None  # the attribute or event property read; None for a literal
    get: Getter
    default: Any  # already converted for the slot; _NONE when there is none


_NONE: Any = object()


def _source_getter(source: str, name: str) -> Getter:
    if source == "literal":
        raise AssertionError("literals are converted once, not fetched")
    if source == "attribute":
        return lambda attributes, _events: attributes.get(name)

    def from_event(_attributes: Mapping[str, Any], events: Mapping[str, Any] | None) -> Any:
        return _lookup_path(events or {}, name)

    return from_event


def _lookup_path(data: Mapping[str, Any], name: str) -> Any:
    """``name`` in ``data``; a dotted name (``order.total``) reaches into nested objects."""
    if name in data:
        return data[name]
    current: Any = data
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _compile_entry(
    slot: Slot, spec: Any, events_allowed: bool, problems: dict[str, str]
) -> _Entry | None:
    key = slot.key
    if not isinstance(spec, Mapping):
        problems[key] = (
            'write {"literal": ...}, {"attribute": "name"} or {"event_property": "name"}, '
            'optionally with "default"'
        )
        return None
    unknown = sorted(set(spec) - {*SOURCES, "default"})
    given = [source for source in SOURCES if source in spec]
    if unknown:
        problems[key] = (
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            "use one of literal, attribute or event_property, and optionally default"
        )
        return None
    if len(given) != 1:
        problems[key] = "give exactly one of literal, attribute or event_property" + (
            f" (got {', '.join(given)})" if given else ""
        )
        return None
    source = given[0]
    default = _NONE
    if "default" in spec:
        try:
            default = _convert(slot, spec["default"])
        except ValueError as exc:
            problems[key] = f"default: {exc}"
            return None
        if default is None:
            problems[key] = "default: give a value (blank text is never sent)"
            return None
    if source == "literal":
        try:
            value = _convert(slot, spec["literal"])
        except ValueError as exc:
            problems[key] = f"literal: {exc}"
            return None
        if value is None:
            problems[key] = "literal: give a value (blank text is never sent)"
            return None
        return _Entry(slot, source, None, lambda _a, _e: value, default)
    name = spec[source]
    if not isinstance(name, str) or not name.strip():
        problems[key] = f"{source}: give the name of the {source.replace('_', ' ')} to read"
        return None
    if source == "event_property" and not events_allowed:
        problems[key] = (
            "event_property is only available where an event started the send (journeys); "
            "use an attribute or a literal here"
        )
        return None
    return _Entry(slot, source, name.strip(), _source_getter(source, name.strip()), default)


# --- values -------------------------------------------------------------------------------------


def format_value(value: Any) -> str | None:
    """The text of an attribute or property value; None when it has none (missing).

    Numbers lose a trailing ``.0``, booleans read ``true``/``false``, dates are ISO (a date
    alone when it is midnight UTC: that is how date-only attributes are stored), lists are
    joined with ", ". Blank text is no text: never a blank in a customer's message.
    """
    # Text first: it is what most values are (every recipient, every variable), and no value
    # is both text and a number or date, so the order of these checks changes no result.
    if isinstance(value, str):
        text = value.strip()
        if _STORED_MIDNIGHT.fullmatch(text):
            return text[:10]
        return value if text else None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        items = [format_value(item) for item in value]
        joined = ", ".join(item for item in items if item)
        return joined or None
    return None


# The profiles capability stores dates as YYYY-MM-DDTHH:MM:SSZ; midnight means a date alone.
_STORED_MIDNIGHT = re.compile(r"\d{4}-\d{2}-\d{2}T00:00:00Z")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        if moment.time() == time(0):
            return moment.date().isoformat()
        return moment.isoformat().replace("+00:00", "Z")
    return moment.date().isoformat() if moment.time() == time(0) else moment.isoformat()


def _convert(slot: Slot, value: Any) -> Any:
    """``value`` in the form the slot sends; ``None`` when it is missing; ValueError when it
    can never fit (a literal or default of the wrong shape)."""
    if slot.kind in ("text", "coupon", "payload"):
        if isinstance(value, Mapping):
            raise ValueError("a text value, number, date or list, not an object")
        return format_value(value)
    if slot.kind == "media":
        return _media(value)
    if slot.kind == "location":
        return _location(value)
    return _expiration(value)


def _media(value: Any) -> dict[str, str] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = {"link": value.strip()}
    if not isinstance(value, Mapping):
        raise ValueError("a media link (https://...) or {link, filename}")
    link = value.get("link")
    if not isinstance(link, str) or not re.match(r"https?://\S+$", link.strip()):
        raise ValueError("media needs a link starting with https:// (or http://)")
    media = {"link": link.strip()}
    filename = value.get("filename")
    if filename is not None:
        if not isinstance(filename, str) or not filename.strip():
            raise ValueError("filename: the document's file name (text)")
        media["filename"] = filename.strip()
    unknown = sorted(set(value) - {"link", "filename"})
    if unknown:
        raise ValueError(f"media takes link and filename, not {', '.join(unknown)}")
    return media


def _location(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("a location is {latitude, longitude, name?, address?}")
    location: dict[str, Any] = {}
    for name, limit in (("latitude", 90), ("longitude", 180)):
        number = _number(value.get(name))
        if number is None or not -limit <= number <= limit:
            raise ValueError(f"{name}: a number from -{limit} to {limit}")
        location[name] = number
    for name in ("name", "address"):
        text = value.get(name)
        if text is not None:
            if not isinstance(text, str):
                raise ValueError(f"{name}: text")
            if text.strip():
                location[name] = text.strip()
    unknown = sorted(set(value) - {"latitude", "longitude", "name", "address"})
    if unknown:
        raise ValueError(f"a location takes latitude, longitude, name, address, not {unknown}")
    return location


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _expiration(value: Any) -> int | None:
    """Epoch milliseconds from epoch ms / seconds, an ISO date(-time) or a datetime."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime.combine(value, time(0), UTC).timestamp() * 1000)
    number = _number(value)
    if number is not None and number > 0:
        return int(number if number >= _MS_THRESHOLD else number * 1000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return _expiration(moment)
    raise ValueError("an expiry time: epoch milliseconds or seconds, or an ISO date-time")


# --- compiling ----------------------------------------------------------------------------------


def compile_mapping(
    definition: dict[str, Any], mapping: Mapping[str, Any], *, events_allowed: bool = False
) -> Personalizer:
    """Check ``mapping`` against the template ``definition`` and return its personalizer.

    ``definition`` is the stored template's WhatsApp definition with its category
    (``messaging.service.template_definition``). Raises :class:`MappingError` with every
    problem at once: keys the template does not have, sources that are malformed,
    ``event_property`` where no event started the send, and variables without an entry.
    """
    if not isinstance(mapping, Mapping):
        raise MappingError({"mapping": 'an object of key -> source, e.g. {"body.1": ...}'})
    slots = {slot.key: slot for slot in template_slots(definition)}
    problems: dict[str, str] = {}
    entries: dict[str, _Entry] = {}
    for key, spec in mapping.items():
        slot = slots.get(str(key))
        if slot is None:
            problems[str(key)] = _unknown_key(str(key), slots)
            continue
        entry = _compile_entry(slot, spec, events_allowed, problems)
        if entry is not None:
            entries[slot.key] = entry
    for key, slot in slots.items():
        if key not in mapping and not slot.optional:
            problems[key] = f"required: the template needs {slot.describe}"
    if problems:
        raise MappingError(problems)
    return Personalizer(definition, slots, entries)


def _unknown_key(key: str, slots: Mapping[str, Slot]) -> str:
    known = ", ".join(slots) or "nothing (it has no variables)"
    if not _KEY_SHAPE.fullmatch(key):
        return f"not a variable key ({_KEY_HINT}); this template takes {known}"
    return f"the template has no such variable; it takes {known}"


_PART = (
    r"(?:header\.(?:media|location|[A-Za-z0-9_]+)|body\.[A-Za-z0-9_]+|buttons\.\d+\.[A-Za-z0-9_]+)"
)
_KEY_SHAPE = re.compile(rf"(?:cards\.\d+\.)?{_PART}|lto\.expiration")


# --- filling ------------------------------------------------------------------------------------


class Personalizer:
    """A mapping checked against one template; fills it for one recipient at a time."""

    def __init__(
        self, definition: Mapping[str, Any], slots: Mapping[str, Slot], entries: dict[str, _Entry]
    ) -> None:
        self.definition = definition
        self.slots = dict(slots)
        self._entries = entries
        self.attributes: frozenset[str] = frozenset(
            entry.name for entry in entries.values() if entry.source == "attribute" and entry.name
        )
        self.event_properties: frozenset[str] = frozenset(
            entry.name
            for entry in entries.values()
            if entry.source == "event_property" and entry.name
        )
        # The template's fill plan, built on the first components() call: compile_mapping also
        # only checks mappings (campaign and journey saves) that are never filled, and a
        # definition the plan cannot read fails at the first fill.
        self._plan: _Plan | None = None

    def values(
        self, attributes: Mapping[str, Any], event_properties: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Each key's value for one recipient (converted); raises :class:`MissingVariable`."""
        values: dict[str, Any] = {}
        for key, entry in self._entries.items():
            raw = entry.get(attributes, event_properties)
            try:
                value = _convert(entry.slot, raw)
            except ValueError as exc:
                if entry.default is _NONE:
                    raise MissingVariable(key, f"its value does not fit: {exc}") from None
                value = None
            if value is None:
                if entry.default is _NONE:
                    if entry.slot.optional:
                        continue
                    raise MissingVariable(key)
                value = entry.default
            values[key] = value
        return values

    def components(
        self, attributes: Mapping[str, Any], event_properties: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """WhatsApp send-format components for one recipient (``Message.content["components"]``).

        Raises :class:`MissingVariable` when a value is missing and the mapping has no default.
        Filled from a plan of the template made once (``definition`` is taken as fixed from
        here on).
        """
        values = self.values(attributes, event_properties)
        if self._plan is None:
            self._plan = _plan(self.definition)
        return self._plan(values)

    def preview(
        self, attributes: Mapping[str, Any], event_properties: Mapping[str, Any] | None = None
    ) -> str:
        """The message as plain text, as this recipient will read it."""
        components = self.components(attributes, event_properties)
        return render_template(self.definition, components).preview


# --- the fill plan ------------------------------------------------------------------------------
#
# A campaign fills the same template for up to a million recipients, so the Personalizer reads
# the definition once (component lookups, placeholder scans, key strings): the plan is one
# filler per component that can be sent, each holding its keys and parameter names ready, so a
# recipient costs a lookup per variable. Every recipient gets new dicts. The plain walk it
# replaced is kept as the tests' reference (tests/templates/reference_components.py), which it
# must match to the byte: same components, order and dict key order.

_Values = Mapping[str, Any]
# One component for one recipient; None when it has nothing to send (an optional value unset).
_Filler = Callable[[_Values], dict[str, Any] | None]
_Plan = Callable[[_Values], list[dict[str, Any]]]


def _plan(definition: Mapping[str, Any]) -> _Plan:
    """The components builder of one template definition, read once."""
    components = _components(definition)
    if _is_authentication(definition):
        return _authentication_plan(components)
    fillers = _part_fillers(components, "")
    if _component(components, "LIMITED_TIME_OFFER") is not None:
        fillers.append(_fill_offer)
    carousel = _component(components, "CAROUSEL")
    if carousel is not None:
        fillers.append(_carousel_filler(carousel))
    return partial(_fill_all, tuple(fillers))


def _fill_all(fillers: Sequence[_Filler], values: _Values) -> list[dict[str, Any]]:
    return [component for fill in fillers if (component := fill(values)) is not None]


def _parameter_name(name: str) -> str | None:
    """The ``parameter_name`` a text parameter carries: named variables only, not ``{{1}}``."""
    return None if name.isdigit() else name


def _text(value: str, name: str | None) -> dict[str, str]:
    if name is None:
        return {"type": "text", "text": value}
    return {"type": "text", "text": value, "parameter_name": name}


def _part_fillers(components: Sequence[Mapping[str, Any]], prefix: str) -> list[_Filler]:
    """The fillers of ``_part_components``: header, body, then each button, in that order."""
    fillers: list[_Filler] = []
    header = _component(components, "HEADER")
    if header is not None:
        filler = _header_filler(header, f"{prefix}header")
        if filler is not None:
            fillers.append(filler)
    body = _component(components, "BODY")
    if body is not None:
        names = placeholders(str(body.get("text") or ""))
        if names:
            fillers.append(
                _body_filler(tuple((f"{prefix}body.{n}", _parameter_name(n)) for n in names))
            )
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons") or ()):
        if isinstance(button, Mapping):
            filler = _button_filler(button, index, f"{prefix}buttons.{index}")
            if filler is not None:
                fillers.append(filler)
    return fillers


def _body_filler(variables: tuple[tuple[str, str | None], ...]) -> _Filler:
    def fill(values: _Values) -> dict[str, Any]:
        parameters = [_text(values[key], name) for key, name in variables]
        return {"type": "body", "parameters": parameters}

    return fill


def _header_filler(header: Mapping[str, Any], where: str) -> _Filler | None:
    fmt = _upper(header.get("format") or "TEXT")
    if fmt == "TEXT":
        names = placeholders(str(header.get("text") or ""))
        if not names:
            return None
        # A text header sends its first variable only, as _header_parameter does.
        key, name = f"{where}.{names[0]}", _parameter_name(names[0])
        return lambda values: {"type": "header", "parameters": [_text(values[key], name)]}
    if fmt in _MEDIA_FORMATS:
        return _media_filler(_MEDIA_FORMATS[fmt], f"{where}.media")
    if fmt == "LOCATION":
        key = f"{where}.location"
        return lambda values: {
            "type": "header",
            "parameters": [{"type": "location", "location": dict(values[key])}],
        }
    return None


def _media_filler(kind: str, key: str) -> _Filler:
    keeps_filename = kind == "document"  # only documents carry a file name

    def fill(values: _Values) -> dict[str, Any]:
        media = dict(values[key])
        if not keeps_filename:
            media.pop("filename", None)
        return {"type": "header", "parameters": [{"type": kind, kind: media}]}

    return fill


def _button_filler(button: Mapping[str, Any], index: int, where: str) -> _Filler | None:
    kind = _upper(button.get("type"))
    at = str(index)
    if kind == "URL":
        names = placeholders(str(button.get("url") or ""))
        if not names:
            return None
        key = f"{where}.{names[0]}"
        return lambda values: {
            "type": "button",
            "index": at,
            "sub_type": "url",
            "parameters": [{"type": "text", "text": quote(str(values[key]), safe=_URL_SAFE)}],
        }
    if kind == "COPY_CODE":
        key = f"{where}.1"
        return lambda values: {
            "type": "button",
            "index": at,
            "sub_type": "copy_code",
            "parameters": [{"type": "coupon_code", "coupon_code": values[key]}],
        }
    if kind == "QUICK_REPLY":
        key = f"{where}.payload"
        # The payload is optional: without one WhatsApp uses the label, so nothing is sent.
        return lambda values: (
            {
                "type": "button",
                "index": at,
                "sub_type": "quick_reply",
                "parameters": [{"type": "payload", "payload": values[key]}],
            }
            if key in values
            else None
        )
    return None


def _fill_offer(values: _Values) -> dict[str, Any] | None:
    # No value means the offer has no expiration (has_expiration false: no such slot).
    if "lto.expiration" not in values:
        return None
    expiry = {"expiration_time_ms": values["lto.expiration"]}
    return {
        "type": "limited_time_offer",
        "parameters": [{"type": "limited_time_offer", "limited_time_offer": expiry}],
    }


def _carousel_filler(carousel: Mapping[str, Any]) -> _Filler:
    cards: list[tuple[int, tuple[_Filler, ...]]] = []
    for k, card in enumerate(carousel.get("cards") or ()):
        parts = [c for c in (card or {}).get("components") or () if isinstance(c, Mapping)]
        cards.append((k, tuple(_part_fillers(parts, f"cards.{k}."))))

    def fill(values: _Values) -> dict[str, Any]:
        filled = [
            {"card_index": k, "components": _fill_all(fillers, values)} for k, fillers in cards
        ]
        return {"type": "carousel", "cards": filled}

    return fill


def _authentication_plan(components: Sequence[Mapping[str, Any]]) -> _Plan:
    """``_authentication_components``: the code in the body and again on each OTP button."""
    buttons = _component(components, "BUTTONS")
    otp_indexes = tuple(
        str(index)
        for index, button in enumerate((buttons or {}).get("buttons") or ())
        if isinstance(button, Mapping) and _upper(button.get("type")) == "OTP"
    )

    def fill(values: _Values) -> list[dict[str, Any]]:
        code = values["body.1"]
        result: list[dict[str, Any]] = [
            {"type": "body", "parameters": [{"type": "text", "text": code}]}
        ]
        for at in otp_indexes:
            result.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": at,
                    "parameters": [{"type": "text", "text": code}],
                }
            )
        return result

    return fill
