"""MSG91's native WhatsApp API (contracts.md, Part B).

Templates go through the bulk API (B2): one request per (template, language) carries up to
``batch_size`` recipients, each in its own ``to_and_components`` group. MSG91 answers with one
``request_id`` for the whole request; per-recipient outcomes arrive by webhook (B5), one event
per number, carrying ``requestId`` + ``customerNumber`` — that pair is how reports find their
attempt, so one request never carries the same number twice.

Much of MSG91's format is known only from third-party code. Every guessed shape is marked
``# unverified:`` here and listed in ``UNVERIFIED`` (printed by the README), so each can be
checked on a sandbox number and the mark removed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from waconnect.providers.adapters.base import (
    JSON_HEADERS,
    CallbackParseError,
    DeliveryReport,
    HttpRequest,
    InboundMessage,
    OutboundItem,
    ProviderEndpoint,
    SendResult,
    SessionSend,
    TemplateSend,
    UnsupportedContent,
    digits,
    json_request,
    load_json,
    message_fields,
    normalize_status,
    parse_timestamp,
    request_headers,
)
from waconnect.providers.errors import (
    ProviderError,
    known_family,
    make_error,
    msg91_answer_family,
)
from waconnect.templates.render import parameter_value

__all__ = [
    "ADAPTER",
    "DEFAULT_API_BASE",
    "DEFAULT_TEMPLATES_BASE",
    "SESSION_MEDIA_ENABLED",
    "UNVERIFIED",
    "Msg91Adapter",
]

DEFAULT_API_BASE = "https://api.msg91.com/api/v5/whatsapp"
DEFAULT_TEMPLATES_BASE = "https://control.msg91.com/api/v5/whatsapp"
_BULK_PATH = "/whatsapp-outbound-message/bulk/"
_SESSION_PATH = "/whatsapp-outbound-message/"

# The media session shape is a guess (B3 [U]); contracts.md asks for it behind a flag until it
# has been tried on a real number. Off means media session sends raise UnsupportedContent.
SESSION_MEDIA_ENABLED = True

UNVERIFIED: list[str] = [
    "msg91 bulk: `components` keyed by position (body_N, header_1, button_N) comes from a "
    "payload guide copy, not an official page (B2 [I])",
    "msg91 bulk: named parameters add `parameter_name` next to `type`/`value` (B2 [I])",
    "msg91 bulk: location header values are sent as strings (B2 [I])",
    "msg91 bulk: carousel card bodies and buttons as card_K_body_N / card_K_button_N, "
    "following the card_K_header_1 pattern (B2 [U])",
    "msg91 bulk: quick-reply payloads are not sent (no known key; WhatsApp then uses the label)",
    "msg91 bulk: limited-time-offer expiry has no known key; sends with an expiry are refused",
    "msg91 session: text as {integrated_number, recipient_number, content_type: text, "
    "text: {body}} (B3 [I])",
    "msg91 session: interactive as content_type interactive + WhatsApp's interactive object "
    "(B3 [I])",
    "msg91 session: media as content_type <type> + attachment_url/caption/filename (B3 [U])",
    "msg91 session: location as content_type location + WhatsApp's location object "
    "{latitude, longitude, name, address} (B3 [U])",
    "msg91 session: lists as content_type interactive + WhatsApp's list object, built from the "
    "reply-button sample (B3 [I] shows buttons only)",
    "msg91 bulk: an authentication template's code as body_1 plus its OTP button as button_1 "
    "{subtype: url}, WhatsApp's send format for one-time codes (B2 [U])",
    "msg91 session: success answer carries data.message_uuid (B3 [I])",
    "msg91 errors: 401 with apiError 201 (bad authkey) / 418 (IP not whitelisted) (B7 [I])",
    "msg91 webhook: `direction`/`eventName` encoding of inbound vs outbound (B5 [U])",
    "msg91 webhook: status casing; statusCode/reason/failureReason carry the failure code (B5 [U])",
    "msg91 webhook: old variant's CRQID taken as the request id (B5 [I])",
    "msg91 verify: GET get-template-client/<number> on the templates host (B4 [I])",
]

_DELIVERY_STATUSES = frozenset({"sent", "delivered", "read", "failed", "clicked"})
# Fields MSG91 may send as stringified JSON (B5: messages, content, button; the rest in code).
_STRINGIFIED = ("messages", "content", "button", "interactive", "reaction", "location")
# Where a failure code may be, in order of trust. cleverTapErrorCode holds a generic A4 code.
_FAILURE_CODE_FIELDS = ("statusCode", "cleverTapErrorCode", "reason", "failureReason")
_FAILURE_TEXT_FIELDS = ("reason", "failureReason", "cleverTapErrorReason", "statusMessage")
_EXTRA_FIELDS = (
    "integratedNumber",
    "crqid",
    "CRQID",
    "campaignName",
    "campaignRequestId",
    "companyId",
    "templateLanguage",
    "price",
)


class Msg91Adapter:
    """Wire format of MSG91's native API; stateless, one shared instance."""

    kind: str = "msg91"

    def max_batch(self, endpoint: ProviderEndpoint) -> int:
        return max(1, endpoint.batch_size)

    def batch_key(self, item: OutboundItem) -> Hashable:
        return _batch_key(item)

    def build_request(
        self, endpoint: ProviderEndpoint, items: Sequence[OutboundItem]
    ) -> HttpRequest:
        if not items:
            raise ValueError("nothing to send")
        headers = request_headers(endpoint, JSON_HEADERS)
        base = _api_base(endpoint)
        first = items[0]
        if isinstance(first, SessionSend):
            if len(items) != 1:
                raise ValueError("msg91 session messages go one per request")
            return json_request(base + _SESSION_PATH, headers, _session_payload(endpoint, first))
        return json_request(base + _BULK_PATH, headers, _bulk_payload(endpoint, items))

    def parse_response(
        self, status: int, body: bytes, items: Sequence[OutboundItem]
    ) -> list[SendResult]:
        result = read_answer(status, body)
        return [result] * len(items)  # one answer for the whole bulk request

    def parse_delivery(self, body: bytes) -> list[DeliveryReport]:
        reports = []
        for n, event in enumerate(_events(body)):
            if _is_inbound(event):
                continue  # an inbound event on the delivery URL: the raw body is kept anyway
            reports.append(_delivery_report(event, n))
        return reports

    def parse_inbound(self, body: bytes) -> list[InboundMessage]:
        return [
            _inbound_message(event, n)
            for n, event in enumerate(_events(body))
            if _is_inbound(event)
        ]

    def build_verify_request(self, endpoint: ProviderEndpoint) -> HttpRequest:
        # unverified: B4 list endpoint; harmless (reads templates) and proves authkey + number.
        base = (endpoint.templates_base or DEFAULT_TEMPLATES_BASE).rstrip("/")
        url = f"{base}/get-template-client/{endpoint.mobile_number}"
        headers = request_headers(endpoint, {"Accept": "application/json"})
        return HttpRequest("GET", url, headers)

    def parse_verify_response(self, status: int, body: bytes) -> ProviderError | None:
        return read_answer(status, body).error


ADAPTER = Msg91Adapter()


def _batch_key(item: OutboundItem) -> Hashable:
    if isinstance(item, TemplateSend):
        return ("template", str(item.template.get("name", "")), _language(item.template))
    return ("session", item.reference)  # session sends go one per request


def _api_base(endpoint: ProviderEndpoint) -> str:
    base = endpoint.endpoint_url.strip().rstrip("/") or DEFAULT_API_BASE
    # Forgive a pasted send URL: the base is what comes before the send paths.
    for suffix in (_BULK_PATH.rstrip("/"), _SESSION_PATH.rstrip("/")):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _language(template: Mapping[str, Any]) -> str:
    language = template.get("language", "")
    if isinstance(language, Mapping):
        return str(language.get("code", ""))
    return str(language)


# --- B2 bulk template ------------------------------------------------------------------------


def _bulk_payload(endpoint: ProviderEndpoint, items: Sequence[OutboundItem]) -> dict[str, Any]:
    first = items[0]
    assert isinstance(first, TemplateSend)
    key = _batch_key(first)
    groups = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, TemplateSend) or _batch_key(item) != key:
            raise ValueError("one msg91 bulk request carries one template in one language")
        if item.to in seen:
            # Reports are matched by request id + number: a repeat would make them ambiguous.
            raise ValueError(f"number {item.to} twice in one msg91 bulk request")
        seen.add(item.to)
        groups.append({"to": [item.to], "components": template_components(item)})
    template = first.template
    return {
        "integrated_number": endpoint.mobile_number,
        "content_type": "template",
        "payload": {
            "messaging_product": "whatsapp",
            "type": "template",
            "template": {
                "name": template["name"],
                "language": {"code": _language(template), "policy": "deterministic"},
                "namespace": template.get("namespace"),
                "to_and_components": groups,
            },
        },
    }


def template_components(item: TemplateSend) -> dict[str, Any]:
    """B2's components object for one recipient, from WhatsApp send components.

    Only parts with values appear; static headers, bodies, footers, quick replies, static URLs
    and phone buttons need no keys.
    """
    components: dict[str, Any] = {}
    for component in item.components:
        kind = str(component.get("type", "")).lower()
        if kind == "carousel":
            for position, card in enumerate(component.get("cards") or ()):
                card_index = int(card.get("card_index", position))
                for part in card.get("components") or ():
                    _add_component(components, part, f"card_{card_index}_")
        elif kind == "limited_time_offer":
            _check_limited_time_offer(component)
        else:
            _add_component(components, component, "")
    return components


def _add_component(out: dict[str, Any], component: Mapping[str, Any], prefix: str) -> None:
    kind = str(component.get("type", "")).lower()
    parameters = component.get("parameters") or ()
    if kind == "header":
        for parameter in parameters[:1]:  # a header has at most one parameter
            _add_header(out, parameter, prefix)
    elif kind == "body":
        # unverified: inside a carousel card the keys become card_K_body_N (like card_K_header_1)
        for n, parameter in enumerate(parameters, start=1):
            out[f"{prefix}body_{n}"] = _text_value(parameter)
    elif kind == "button":
        _add_button(out, component, prefix)
    elif kind == "limited_time_offer":
        _check_limited_time_offer(component)
    else:
        raise UnsupportedContent(f"{kind} components are not supported by provider kind msg91")


def _text_value(parameter: Mapping[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "text", "value": parameter_value(parameter)}
    if "parameter_name" in parameter:
        value["parameter_name"] = str(parameter["parameter_name"])  # unverified: B2 [I]
    return value


def _add_header(out: dict[str, Any], parameter: Mapping[str, Any], prefix: str) -> None:
    kind = str(parameter.get("type", "text"))
    key = f"{prefix}header_1"
    if kind in ("image", "video", "document"):
        media = parameter.get(kind) or {}
        link = media.get("link")
        if not link:
            raise UnsupportedContent(
                "provider kind msg91 needs a media link for the header; "
                "uploaded media ids cannot be sent"
            )
        value: dict[str, Any] = {"type": kind, "value": link}
        if kind == "document" and media.get("filename"):
            value["filename"] = media["filename"]
        out[key] = value
    elif kind == "location":
        location = parameter.get("location") or {}
        for field_name in ("latitude", "longitude", "name", "address"):
            if location.get(field_name) is not None:
                # unverified: values as strings (B2 [I])
                out[f"{key}_{field_name}"] = {
                    "type": "location",
                    "value": str(location[field_name]),
                }
    else:
        out[key] = _text_value(parameter)


def _add_button(out: dict[str, Any], component: Mapping[str, Any], prefix: str) -> None:
    sub_type = str(component.get("sub_type", "")).lower()
    parameters = component.get("parameters") or ()
    key = f"{prefix}button_{int(component.get('index', 0)) + 1}"  # B2 buttons are 1-based
    if sub_type == "quick_reply":
        return  # unverified: no known key for a quick-reply payload; WhatsApp uses the label
    if not parameters:
        return  # static URL / phone buttons need no key
    parameter = parameters[0]
    if sub_type == "url":
        out[key] = {"subtype": "url", "type": "text", "value": parameter_value(parameter)}
    elif sub_type == "copy_code":
        code = parameter_value(parameter)
        out[key] = {"subtype": "COPY_CODE", "type": "coupon_code", "coupon_code": code}
    elif sub_type == "catalog":
        action = parameter.get("action") or {}
        retailer_id = action.get("thumbnail_product_retailer_id", "")
        out[key] = {"subtype": "CATALOG", "type": "action", "value": retailer_id}
    else:
        raise UnsupportedContent(f"{sub_type} buttons are not supported by provider kind msg91")


def _check_limited_time_offer(component: Mapping[str, Any]) -> None:
    for parameter in component.get("parameters") or ():
        offer = parameter.get("limited_time_offer") or {}
        if "expiration_time_ms" in offer:
            # unverified: B2 has no known key for the offer's expiry; refusing beats guessing a
            # key MSG91 might ignore, which would send the offer without its deadline.
            raise UnsupportedContent(
                "the MSG91 bulk API key for a limited-time-offer expiry is not known; "
                "send this template without an expiry or through the generic provider"
            )


# --- B3 session ------------------------------------------------------------------------------


def _session_payload(endpoint: ProviderEndpoint, item: SessionSend) -> dict[str, Any]:
    content = item.content
    kind = str(content.get("type", ""))
    payload: dict[str, Any] = {
        "integrated_number": endpoint.mobile_number,
        "recipient_number": item.to,
        "content_type": kind,
    }
    if kind == "text":
        text = content.get("text")
        body = text.get("body", "") if isinstance(text, Mapping) else text
        payload["text"] = {"body": str(body)}  # unverified: B3 [I]
        return payload
    if kind == "interactive":
        payload["interactive"] = _interactive(content.get("interactive") or {})
        return payload
    if kind == "location":
        location = content.get("location") or {}
        # unverified: B3 has no location sample; WhatsApp's location object under content_type
        # location, like the text and interactive shapes.
        payload["location"] = {
            key: location[key]
            for key in ("latitude", "longitude", "name", "address")
            if location.get(key) is not None
        }
        return payload
    if kind in ("image", "video", "document", "audio"):
        if not SESSION_MEDIA_ENABLED:
            raise UnsupportedContent(
                f"{kind} messages are not enabled for provider kind msg91 (unverified shape)"
            )
        media = content.get(kind) or {}
        if not media.get("link"):
            raise UnsupportedContent(
                f"provider kind msg91 needs a media link for {kind} messages; "
                "uploaded media ids cannot be sent"
            )
        # unverified: B3 media fields are a Meta-like guess (attachment_url, caption, filename)
        payload["attachment_url"] = media["link"]
        if media.get("caption") and kind != "audio":
            payload["caption"] = media["caption"]
        if media.get("filename") and kind == "document":
            payload["filename"] = media["filename"]
        return payload
    raise UnsupportedContent(f"{kind} messages are not supported by provider kind msg91")


def _interactive(interactive: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = interactive.get("type")
    if kind == "button":
        buttons = (interactive.get("action") or {}).get("buttons") or ()
        if not 1 <= len(buttons) <= 3:
            raise UnsupportedContent(
                f"reply-button messages carry 1 to 3 buttons; this one has {len(buttons)}"
            )
    elif kind != "list":
        raise UnsupportedContent(
            f"interactive {kind} messages are not supported by provider kind msg91 "
            "(reply buttons and lists are)"
        )
    # unverified: B3 [I] — WhatsApp's own interactive object is passed on unchanged.
    return interactive


# --- B7 responses ----------------------------------------------------------------------------


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _title(data: Mapping[str, Any]) -> str | None:
    for key in ("errors", "msg", "message", "data"):
        value = data.get(key)
        if value:
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    return None


def read_answer(status: int, body: bytes) -> SendResult:
    """B7: accepted only if 2xx and ``hasError`` is false and ``status`` is ``success``.

    The error code is ``msg91:<apiError>``, else ``msg91:<HTTP status>``; an apiError the
    tables do not know is classified by its HTTP status. A 2xx we cannot read is in doubt.
    """
    data = _json_or_none(body)
    ok_status = 200 <= status <= 299
    if not isinstance(data, Mapping):
        if ok_status:
            error = make_error("msg91", "bad_response", f"unreadable answer (HTTP {status})")
            return SendResult(False, error, in_doubt=True)
        return SendResult(False, make_error("msg91", status))
    request_id = _request_id(data)
    has_error = data.get("hasError") in (True, "true", "True")
    if ok_status and not has_error and str(data.get("status", "")).lower() == "success":
        return SendResult(True, provider_request_id=request_id)
    return SendResult(False, _answer_error(status, data), provider_request_id=request_id)


def _request_id(data: Mapping[str, Any]) -> str | None:
    value = data.get("request_id")
    inner = data.get("data")
    if value is None and isinstance(inner, Mapping):
        value = inner.get("message_uuid") or inner.get("request_id")  # unverified: B3 [I]
    return None if value is None else str(value)


def _answer_error(status: int, data: Mapping[str, Any]) -> ProviderError:
    api_error = data.get("apiError")
    if api_error is not None and str(api_error).strip() == "":
        api_error = None
    error = make_error("msg91", status if api_error is None else str(api_error), _title(data))
    # Classified from this answer, not from the code alone: an apiError the tables do not
    # know is judged by the HTTP status it came with.
    family = msg91_answer_family(api_error, status)
    return error if error.family == family else replace(error, family=family)


# --- B5 webhooks -----------------------------------------------------------------------------


def _events(body: bytes) -> list[Mapping[str, Any]]:
    data = load_json(body)
    events = data if isinstance(data, list) else [data]
    for n, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise CallbackParseError(f"webhook event {n} is not an object")
    return [_decoded(event) for event in events]


def _decoded(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with its stringified JSON fields parsed (B5: messages, content, button)."""
    changed: dict[str, Any] | None = None
    for key in _STRINGIFIED:
        value = event.get(key)
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue  # plain text that happens to start with a brace
            if changed is None:
                changed = dict(event)
            changed[key] = parsed
    return event if changed is None else changed


def _is_inbound(event: Mapping[str, Any]) -> bool:
    # unverified: B5 does not say how `direction` is encoded; accept words and MO/MT.
    direction = str(event.get("direction", "")).strip().lower()
    if direction:
        return direction.startswith(("in", "mo", "received"))  # inbound, incoming, MO
    name = str(event.get("eventName", "")).lower()
    if "inbound" in name or "incoming" in name:
        return True
    if "outbound" in name:
        return False
    status = event.get("status") or event.get("eventName")
    if status and normalize_status(status) in _DELIVERY_STATUSES:
        return False
    return any(key in event for key in ("messages", "text", "contentType", "button"))


def _first(event: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = event.get(key)
        if value is not None and value != "":
            return value
    return None


def _status_of(event: Mapping[str, Any], n: int) -> str:
    # `status` first; `eventName` may be a status too, or the name of the webhook event.
    candidates = [normalize_status(v) for v in (event.get("status"), event.get("eventName")) if v]
    if not candidates:
        raise CallbackParseError(f"webhook event {n} has neither status nor eventName")
    for status in candidates:
        if status in _DELIVERY_STATUSES:
            return status
    return candidates[0]  # passed on lowercased; the caller ignores what it does not know


def _delivery_report(event: Mapping[str, Any], n: int) -> DeliveryReport:
    status = _status_of(event, n)
    phone = digits(_first(event, "customerNumber", "mobile"))
    if phone is None:
        # One event per recipient, matched by request id + number: without the number the
        # report fits no message. MSG91 lets the user pick the fields, so say which one.
        raise CallbackParseError(
            f"webhook event {n} has no customerNumber (select it in MSG91's webhook parameters)"
        )
    request_id = _first(event, "requestId", "CRQID", "crqid")  # unverified: CRQID as request id
    reference = event.get("clevertapMsgId")
    event_id = event.get("uuid")
    extra = {key: event[key] for key in _EXTRA_FIELDS if key in event}
    return DeliveryReport(
        status=status,
        reference=None if reference is None else str(reference),
        provider_request_id=None if request_id is None else str(request_id),
        phone=phone,
        template_name=_str(event.get("templateName")),
        timestamp=parse_timestamp(_first(event, "statusUpdatedAt", "ts", "requestedAt")),
        error=_failure(event) if status == "failed" else None,
        event_id=None if event_id is None else str(event_id),
        extra=extra,
    )


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _is_meta_code(code: int) -> bool:
    # Only WhatsApp's six-digit codes are recognized: small Meta codes (1, 2, 100, 200-299)
    # collide with HTTP statuses and MSG91's own numbers, so from a loose field they are MSG91's.
    return code >= 100_000 and known_family("meta", code) is not None


def _failure(event: Mapping[str, Any]) -> ProviderError:
    """The failure's code, namespaced by where it comes from.

    WhatsApp's own codes become ``meta:<code>``; cleverTapErrorCode holds the generic
    contract's 10xx codes, so those become ``generic:<code>``; anything else ``msg91:<code>``.
    """
    title = None
    for key in _FAILURE_TEXT_FIELDS:
        value = event.get(key)
        if isinstance(value, str) and value.strip() and _as_code(value) is None:
            title = value.strip()
            break
    for key in _FAILURE_CODE_FIELDS:
        code = _as_code(event.get(key))
        if code is None:
            continue
        if key == "cleverTapErrorCode" and known_family("generic", code) is not None:
            return make_error("generic", code, title)
        if _is_meta_code(code):
            return make_error("meta", code, title)
        return make_error("msg91", code, title)
    return make_error("msg91", "unknown", title or "failed without a code")


def _inbound_message(event: Mapping[str, Any], n: int) -> InboundMessage:
    from_phone = digits(_first(event, "customerNumber", "mobile", "from"))
    if from_phone is None:
        raise CallbackParseError(f"webhook event {n} has no customerNumber")
    messages = event.get("messages")
    message = messages[0] if isinstance(messages, list) and messages else None
    if isinstance(message, Mapping):
        fields = message_fields(message)
    else:
        fields = message_fields(_flat_message(event))
    context = _first(event, "replyMsgId")
    if context is not None and "context_reference" not in fields:
        fields["context_reference"] = str(context)
    event_id = event.get("uuid") or (message.get("id") if isinstance(message, Mapping) else None)
    stamp = _first(event, "ts", "requestedAt")
    if stamp is None and isinstance(message, Mapping):
        stamp = message.get("timestamp")
    return InboundMessage(
        from_phone=from_phone,
        to_number=digits(event.get("integratedNumber")),
        timestamp=parse_timestamp(stamp),
        event_id=None if event_id is None else str(event_id),
        **fields,
    )


def _flat_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A WhatsApp-like message from MSG91's flat fields (contentType, text, url, button...)."""
    kind = str(_first(event, "contentType", "type") or "").lower()
    message: dict[str, Any] = {"type": kind}
    if kind == "text":
        message["text"] = {"body": event.get("text") or event.get("content") or ""}
    elif kind in ("image", "video", "audio", "voice", "document", "file", "sticker"):
        message[kind] = {
            key: event[key] for key in ("url", "caption", "filename") if event.get(key) is not None
        }
    elif kind in ("button", "interactive", "reaction", "location"):
        value = event.get(kind) or event.get("content")
        if isinstance(value, Mapping):
            message[kind] = value
    return message
