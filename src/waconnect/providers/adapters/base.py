"""The seam between the dispatcher and a provider's wire format.

An adapter is a handful of pure functions: our outbound items to one HTTP request, the
provider's HTTP answer to one result per item, the provider's callback bodies to normalized
delivery reports and inbound messages. It does no I/O, keeps no state, and decides nothing
about retries: the dispatcher owns HTTP, concurrency, retries and message state, and reads
``ProviderError.family`` to decide.

Everything here is built from plain dicts and serialized with orjson because the dispatcher
builds thousands of requests a second.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

from waconnect.providers.errors import ProviderError

__all__ = [
    "CallbackParseError",
    "DeliveryReport",
    "HttpRequest",
    "InboundMessage",
    "OutboundItem",
    "ProviderAdapter",
    "ProviderEndpoint",
    "SendResult",
    "SessionSend",
    "TemplateSend",
    "UnsupportedContent",
    "digits",
    "is_secret_header",
    "json_request",
    "load_json",
    "mask_secret",
    "message_fields",
    "normalize_status",
    "parse_timestamp",
    "request_headers",
]


@dataclass(frozen=True, slots=True)
class ProviderEndpoint:
    """What an adapter needs to know about one provider config, secrets already decrypted.

    ``mobile_number`` is the business number as E.164 digits without ``+``. ``templates_base``
    is where a provider lists templates when that differs from ``endpoint_url`` (MSG91).
    """

    kind: str
    endpoint_url: str
    mobile_number: str
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    batch_size: int = 1
    templates_base: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateSend:
    """An approved template to one phone.

    ``reference`` is the attempt reference ``<message id>-<attempt number>`` (≤ 60 chars), the
    generic ``msgId``. ``template`` is the stored definition in WhatsApp's format;
    ``components`` are the send parameters in WhatsApp's send format.
    """

    reference: str
    to: str
    template: Mapping[str, Any]
    components: Sequence[Mapping[str, Any]] = ()
    custom_props: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SessionSend:
    """A free-form message inside the 24-hour window, ``content`` in WhatsApp's message format
    (``{"type": "text", "text": {"body": ...}}``, ``{"type": "image", "image": {...}}``...)."""

    reference: str
    to: str
    content: Mapping[str, Any]


OutboundItem = TemplateSend | SessionSend


_SECRET_WORDS = ("key", "token", "secret", "auth")
_MASK = "••••"


def is_secret_header(name: str) -> bool:
    """Header names that carry credentials (``Authorization``, ``Authkey``, ``X-Api-Token``...)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_secret(value: str) -> str:
    """``••••`` plus the last 4 characters, enough to tell two keys apart.

    Values shorter than 8 characters are masked entirely: their last 4 would be half the secret.
    """
    return _MASK + value[-4:] if len(value) >= 8 else _MASK


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request for the dispatcher to send; ``body`` is JSON bytes (empty for a GET)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""

    def masked(self) -> dict[str, Any]:
        """A JSON-able copy fit for logs, storage and the test-send screen: secrets masked."""
        headers = {
            name: mask_secret(value) if is_secret_header(name) else value
            for name, value in self.headers.items()
        }
        body: Any = None
        if self.body:
            try:
                body = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                body = self.body.decode("utf-8", "replace")
        return {"method": self.method, "url": self.url, "headers": headers, "body": body}

    def masked_json(self) -> str:
        """``masked()`` as JSON text, built without re-encoding the body.

        The dispatcher stores one per request: the masked envelope is cached per (method,
        url, headers) and the body, JSON already, is spliced in after orjson has checked it.
        """
        if not self.body:
            return orjson.dumps(self.masked()).decode()
        try:
            orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return orjson.dumps(self.masked()).decode()
        envelope = _masked_envelope(self.method, self.url, tuple(self.headers.items()))
        return envelope + self.body.decode() + "}"


@lru_cache(maxsize=64)
def _masked_envelope(method: str, url: str, headers: tuple[tuple[str, str], ...]) -> str:
    masked = {
        name: mask_secret(value) if is_secret_header(name) else value for name, value in headers
    }
    text = orjson.dumps({"method": method, "url": url, "headers": masked}).decode()
    return text[:-1] + ',"body":'


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider's answer for one item.

    ``in_doubt`` is True when the provider may have taken the message although we cannot tell
    (a 2xx whose body we cannot read): the dispatcher must treat it like a timeout, not resend.
    ``provider_request_id`` is what the provider's reports will carry (MSG91 ``request_id``).
    """

    accepted: bool
    error: ProviderError | None = None
    provider_request_id: str | None = None
    in_doubt: bool = False


class UnsupportedContent(Exception):
    """This provider kind cannot carry this message; the text tells a person what to change.

    Raised by ``build_request``; the message can never be sent through this provider as it is.
    """


class CallbackParseError(ValueError):
    """A callback body we cannot read; the caller stores the raw body with this, answers 400."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One status of one outbound message, normalized.

    ``status`` is lowercase: ``sent``, ``delivered``, ``read``, ``failed``, ``clicked``; other
    values a provider invents are passed on lowercased for the caller to ignore. A report is
    matched to an attempt by ``reference`` (generic ``msgId``) or, where the provider has no
    such field, by ``provider_request_id`` + ``phone`` (+ ``template_name``).
    ``event_id`` is the provider's unique id for this event, for de-duplication.
    """

    status: str
    reference: str | None = None
    provider_request_id: str | None = None
    phone: str | None = None
    template_name: str | None = None
    timestamp: datetime | None = None
    error: ProviderError | None = None
    event_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A customer's message, normalized.

    ``type`` is one of ``text``, ``button``, ``interactive``, ``image``, ``video``, ``audio``,
    ``document``, ``location``, ``reaction``, ``unknown``. ``text`` is the body, caption, button
    label or reaction emoji. ``button_payload`` is the quick-reply payload or interactive reply
    id. ``context_reference`` is the provider's id of the message replied to (the generic
    ``msgId``, i.e. our attempt reference; for MSG91 the WhatsApp id). ``media`` has ``url``,
    ``id``, ``mime_type``, ``caption``, ``filename`` where given; ``location`` has ``latitude``,
    ``longitude`` (floats) and ``name``, ``address``, ``url`` where given.
    """

    from_phone: str
    to_number: str | None
    type: str
    text: str | None = None
    button_payload: str | None = None
    button_text: str | None = None
    context_reference: str | None = None
    media: Mapping[str, Any] | None = None
    location: Mapping[str, Any] | None = None
    timestamp: datetime | None = None
    event_id: str | None = None


class ProviderAdapter(Protocol):
    """The wire format of one provider kind. All methods are pure and fast."""

    kind: str

    def max_batch(self, endpoint: ProviderEndpoint) -> int:
        """How many items one request may carry for this endpoint (≥ 1)."""
        ...

    def batch_key(self, item: OutboundItem) -> Hashable:
        """Items with equal keys may share one request (at most ``max_batch`` of them)."""
        ...

    def build_request(
        self, endpoint: ProviderEndpoint, items: Sequence[OutboundItem]
    ) -> HttpRequest:
        """One request for ``items`` (all with one ``batch_key``).

        Raises :class:`UnsupportedContent` when this kind cannot carry an item, and
        ``waconnect.templates.render.RenderError`` when a template variable has no value; both
        mean the message cannot be sent as it is. ``ValueError`` means the caller broke the
        batching contract.
        """
        ...

    def parse_response(
        self, status: int, body: bytes, items: Sequence[OutboundItem]
    ) -> list[SendResult]:
        """One result per item, in order, from the provider's HTTP answer."""
        ...

    def parse_delivery(self, body: bytes) -> list[DeliveryReport]:
        """Delivery reports in a delivery callback body; raises :class:`CallbackParseError`."""
        ...

    def parse_inbound(self, body: bytes) -> list[InboundMessage]:
        """Customer messages in an inbound callback body; raises :class:`CallbackParseError`."""
        ...

    def build_verify_request(self, endpoint: ProviderEndpoint) -> HttpRequest:
        """A request that proves the endpoint and credentials work without messaging anyone."""
        ...

    def parse_verify_response(self, status: int, body: bytes) -> ProviderError | None:
        """None when the verify request succeeded, else why it did not."""
        ...


# --- helpers shared by the adapters ----------------------------------------------------------


@lru_cache(maxsize=256)
def _basic_authorization(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def request_headers(endpoint: ProviderEndpoint, defaults: Mapping[str, str]) -> dict[str, str]:
    """``defaults``, then the endpoint's own headers, then Basic auth when configured.

    Names are compared case-insensitively so a configured ``Content-type`` replaces our
    ``Content-Type`` instead of being sent twice. Basic auth wins over a configured
    ``Authorization`` header because it is the dedicated setting.
    """
    configured = {name.lower() for name in endpoint.headers}
    headers = {name: value for name, value in defaults.items() if name.lower() not in configured}
    headers.update(endpoint.headers)
    if endpoint.basic_auth is not None:
        for name in [name for name in headers if name.lower() == "authorization"]:
            del headers[name]
        headers["Authorization"] = _basic_authorization(*endpoint.basic_auth)
    return headers


JSON_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json",
    "Accept": "application/json",
}


def json_request(url: str, headers: dict[str, str], payload: Any) -> HttpRequest:
    """A POST with ``payload`` serialized by orjson."""
    return HttpRequest("POST", url, headers, orjson.dumps(payload))


def load_json(body: bytes) -> Any:
    """Parse a callback body; anything unreadable is a :class:`CallbackParseError`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CallbackParseError(f"body is not JSON: {exc}") from None


def digits(phone: Any) -> str | None:
    """Phone as E.164 digits without ``+`` (as stored everywhere), or None when absent."""
    if phone is None or phone == "":
        return None
    text = str(phone).strip()
    cleaned = "".join(ch for ch in text if ch.isdigit())
    return cleaned or None


_MS_THRESHOLD = 100_000_000_000  # epoch seconds reach this in the year 5138; ms passed it in 1973


def parse_timestamp(value: Any) -> datetime | None:
    """A UTC-aware time from epoch seconds / milliseconds (number or string) or ISO 8601.

    An unreadable time is None rather than an error: a report without a usable time is still
    a report, and the caller falls back to the time it arrived.
    """
    if value is None or value == "":
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return _parse_iso(text)
    if number is None:
        return None
    if abs(number) >= _MS_THRESHOLD:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_iso(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # a provider that omits the zone means UTC more often than not
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_STATUS_SYNONYMS = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "clicked": "clicked",
    "viewed": "read",  # CleverTap's name for the read stat
    "seen": "read",
    "click": "clicked",
    "failure": "failed",
    "fail": "failed",
    "undelivered": "failed",
}
_WORD = re.compile(r"[a-z]+")


def normalize_status(value: Any) -> str:
    """Lowercase status; synonyms (``Viewed``, ``failure``...) and event names that contain a
    status word (``outbound_delivered``) map to ``sent``/``delivered``/``read``/``failed``/
    ``clicked``; anything else is returned lowercased."""
    text = str(value).strip().lower()
    known = _STATUS_SYNONYMS.get(text)
    if known is not None:
        return known
    for word in _WORD.findall(text):
        known = _STATUS_SYNONYMS.get(word)
        if known is not None:
            return known
    return text


# --- inbound message objects -----------------------------------------------------------------
# The generic contract (A5) and the WhatsApp messages MSG91 forwards differ mostly in spelling
# (``mediaURL`` vs ``link``/``url``, ``file`` vs ``document``, ``voice`` vs ``audio``), so one
# reader serves both.

_INBOUND_TYPES = {
    "text": "text",
    "button": "button",
    "interactive": "interactive",
    "image": "image",
    "video": "video",
    "audio": "audio",
    "voice": "audio",
    "document": "document",
    "file": "document",
    "location": "location",
    "reaction": "reaction",
}
# Where each normalized media type's object may sit, first match wins.
_MEDIA_KEYS = {
    "image": ("image",),
    "video": ("video",),
    "audio": ("audio", "voice"),
    "document": ("document", "file"),
}


def _text_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        body = value.get("body")
        return None if body is None else str(body)
    return None if value is None else str(value)


def _infer_type(message: Mapping[str, Any]) -> str:
    for key, normalized in _INBOUND_TYPES.items():
        if key in message and key != "text" and isinstance(message[key], Mapping):
            return normalized
    return "text" if "text" in message else "unknown"


def _media(inner: Mapping[str, Any]) -> dict[str, Any]:
    found = {
        "url": inner.get("mediaURL") or inner.get("url") or inner.get("link"),
        "id": inner.get("id"),
        "mime_type": inner.get("mimeType") or inner.get("mime_type"),
        "caption": inner.get("caption"),
        "filename": inner.get("filename"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _location(inner: Mapping[str, Any]) -> dict[str, Any]:
    found = {key: inner.get(key) for key in ("name", "address", "url")}
    result = {key: value for key, value in found.items() if value is not None}
    result["latitude"] = _as_float(inner.get("latitude"))
    result["longitude"] = _as_float(inner.get("longitude"))
    return result


def message_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """``InboundMessage`` keyword arguments read from one message object (generic A5 or
    WhatsApp's own shape): type, text, button, context, media, location. Phones, time and ids
    differ per provider and are left to the adapter."""
    raw_type = str(message.get("type") or "").lower()
    kind = _INBOUND_TYPES.get(raw_type) if raw_type else _infer_type(message)
    kind = kind or "unknown"
    fields: dict[str, Any] = {"type": kind}
    context = message.get("context")
    if isinstance(context, Mapping) and context.get("id") is not None:
        fields["context_reference"] = str(context["id"])
    if kind == "text":
        fields["text"] = _text_of(message.get("text"))
    elif kind == "button":
        button = message.get("button")
        if isinstance(button, Mapping):
            fields["button_payload"] = _str_or_none(button.get("payload"))
            fields["button_text"] = _str_or_none(button.get("text"))
            fields["text"] = fields["button_text"]
    elif kind == "interactive":
        fields.update(_interactive_reply(message.get("interactive")))
    elif kind in _MEDIA_KEYS:
        for key in _MEDIA_KEYS[kind]:
            inner = message.get(key)
            if isinstance(inner, Mapping):
                fields["media"] = _media(inner)
                fields["text"] = _str_or_none(inner.get("caption"))
                break
    elif kind == "location" and isinstance(message.get("location"), Mapping):
        fields["location"] = _location(message["location"])
    elif kind == "reaction" and isinstance(message.get("reaction"), Mapping):
        reaction = message["reaction"]
        fields["text"] = _str_or_none(reaction.get("emoji"))  # absent when a reaction is removed
        if reaction.get("message_id") is not None:
            fields["context_reference"] = str(reaction["message_id"])
    return fields


def _interactive_reply(interactive: Any) -> dict[str, Any]:
    if not isinstance(interactive, Mapping):
        return {}
    reply = interactive.get("button_reply") or interactive.get("list_reply")
    if not isinstance(reply, Mapping):
        return {}
    title = _str_or_none(reply.get("title"))
    return {"button_payload": _str_or_none(reply.get("id")), "button_text": title, "text": title}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
