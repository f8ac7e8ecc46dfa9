"""The engagement-suite "Generic (Other)" WhatsApp provider contract (contracts.md, Part A).

One message per request (A2), its ``msgId`` is our attempt reference so every report (A4)
maps to one attempt. The contract carries rendered text alongside the parameters, so the
stored template is rendered here (waconnect.templates.render).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
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
from waconnect.providers.errors import ProviderError, make_error
from waconnect.templates.render import (
    RenderError,
    parameter_value,
    placeholders,
    render_text,
    send_component,
    send_values,
)

__all__ = ["ADAPTER", "UNVERIFIED", "GenericAdapter"]

PAYLOAD_VERSION = 0.1
VERIFY_NAMESPACE = "whatsapp:hsm:technology:generic:verify"
VERIFY_MSG_ID = "0|0|0|0"
# unverified: A2.4 does not say which `to` the validation payload carries; A8's dummy number.
VERIFY_TO = "919999999999"

UNVERIFIED: list[str] = [
    "generic verify: `to` of the validation payload is the A8 dummy number +919999999999",
    "generic template: named parameters carry `parameter_name` (the contract shows only {{1}})",
]

# Stored WhatsApp button type -> generic `subType`; URL buttons are decided by their url.
_BUTTON_SUBTYPES = {
    "QUICK_REPLY": "quickReply",
    "PHONE_NUMBER": "callPhone",
    "COPY_CODE": "copy_code",
}
_MEDIA_HEADERS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "file"}
_SESSION_MEDIA = {"image": "image", "video": "video", "document": "file", "audio": "audio"}
_CLICK_FIELDS = ("url", "shortUrl", "userAgent", "ts")


class GenericAdapter:
    """Wire format of the generic contract; stateless, one shared instance."""

    kind: str = "generic"

    def max_batch(self, endpoint: ProviderEndpoint) -> int:
        return 1  # the contract has one recipient per request

    def batch_key(self, item: OutboundItem) -> Hashable:
        return item.reference  # unique: nothing shares a request

    def build_request(
        self, endpoint: ProviderEndpoint, items: Sequence[OutboundItem]
    ) -> HttpRequest:
        if len(items) != 1:
            raise ValueError(f"provider kind {self.kind} sends one message per request")
        item = items[0]
        if isinstance(item, TemplateSend):
            payload = self._template_payload(endpoint, item)
        else:
            payload = self._session_payload(endpoint, item)
        return json_request(endpoint.endpoint_url, request_headers(endpoint, JSON_HEADERS), payload)

    # -- A2.1/A2.2 template ------------------------------------------------------------------

    def _template_payload(self, endpoint: ProviderEndpoint, item: TemplateSend) -> dict[str, Any]:
        template = item.template
        if _is_authentication(template):
            raise UnsupportedContent(
                "the generic provider contract cannot carry authentication templates"
            )
        components: list[Any] = []
        for stored in template.get("components") or ():
            components.extend(self._component(stored, item.components))
        if item.custom_props:
            # A2.3 places customProps as the last element of components, one key per object.
            components.append({"customProps": [{k: v} for k, v in item.custom_props.items()]})
        return {
            "payloadVersion": PAYLOAD_VERSION,
            "to": "+" + item.to,
            "wabaNumber": endpoint.mobile_number,
            "isTemplate": True,
            "msgId": item.reference,
            "template": {"namespace": template["name"], "languageCode": _language(template)},
            "components": components,
        }

    def _component(
        self, stored: Mapping[str, Any], sent: Sequence[Mapping[str, Any]], where: str = ""
    ) -> list[dict[str, Any]]:
        kind = str(stored.get("type", "")).upper()
        if kind == "HEADER":
            return [self._header(stored, send_component(sent, "header"), f"{where}header")]
        if kind == "BODY":
            return [_body(stored, send_component(sent, "body"), f"{where}body")]
        if kind == "FOOTER":
            return [{"type": "footer", "footer": str(stored.get("text", ""))}]
        if kind == "BUTTONS":
            return self._buttons(stored.get("buttons") or (), sent, f"{where}button")
        if kind == "LIMITED_TIME_OFFER":
            return [_limited_time_offer(stored, send_component(sent, "limited_time_offer"))]
        if kind == "CAROUSEL":
            return [self._carousel(stored, send_component(sent, "carousel"))]
        raise UnsupportedContent(
            f"{kind} components are not supported by provider kind {self.kind}"
        )

    def _header(
        self, stored: Mapping[str, Any], sent: Mapping[str, Any] | None, where: str
    ) -> dict[str, Any]:
        fmt = str(stored.get("format", "TEXT")).upper()
        parameters = (sent or {}).get("parameters") or ()
        if fmt == "TEXT":
            text = render_text(str(stored.get("text", "")), send_values(parameters), where)
            inner = {"text": text, "parameters": _text_parameters(parameters)}
            return {"type": "header", "header": {"type": "text", "text": inner}}
        if fmt in _MEDIA_HEADERS:
            media = _media_parameter(parameters, fmt.lower(), where, self.kind)
            wire_type = _MEDIA_HEADERS[fmt]
            header_media = {"mediaURL": media["link"]}
            if wire_type == "file" and media.get("filename"):
                header_media["filename"] = str(media["filename"])
            return {"type": "header", "header": {"type": wire_type, wire_type: header_media}}
        if fmt == "LOCATION":
            location = _parameter_object(parameters, "location", where)
            # A2.2: latitude/longitude as strings; name/address/url are not sent.
            coordinates = {
                "latitude": str(location.get("latitude", "")),
                "longitude": str(location.get("longitude", "")),
            }
            return {"type": "header", "header": {"type": "location", "location": coordinates}}
        raise UnsupportedContent(f"{fmt} headers are not supported by provider kind {self.kind}")

    def _buttons(
        self,
        buttons: Sequence[Mapping[str, Any]],
        sent: Sequence[Mapping[str, Any]],
        where: str,
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for index, button in enumerate(buttons):
            kind = str(button.get("type", "")).upper()
            # WhatsApp stores COPY_CODE buttons without a label (it shows its own).
            label = str(button.get("text") or ("Copy code" if kind == "COPY_CODE" else ""))
            parameters = (send_component(sent, "button", index) or {}).get("parameters") or ()
            out: dict[str, Any] = {"type": "button", "index": index, "buttonText": label}
            if kind == "URL":
                out.update(_url_button(button, parameters, f"{where} {index}"))
            elif kind == "QUICK_REPLY":
                out["subType"] = "quickReply"
                if parameters:  # optional: without it WhatsApp uses the label as payload
                    payload = parameter_value(parameters[0])
                    out["parameters"] = [{"type": "payload", "payload": payload}]
            elif kind == "PHONE_NUMBER":
                out["subType"] = _BUTTON_SUBTYPES[kind]
                phone = str(button.get("phone_number", ""))
                phone = phone if phone.startswith("+") else "+" + phone
                out["parameters"] = [{"type": "text", "text": phone}]
            elif kind == "COPY_CODE":
                out["subType"] = _BUTTON_SUBTYPES[kind]
                if not parameters:
                    raise RenderError(f"{where} {index}", "coupon_code", "no coupon code given")
                code = parameter_value(parameters[0])
                out["parameters"] = [{"type": "coupon_code", "coupon_code": code}]
            elif kind == "OTP":
                raise UnsupportedContent(
                    "the generic provider contract cannot carry authentication templates"
                )
            else:
                raise UnsupportedContent(
                    f"{kind} buttons are not supported by provider kind {self.kind}"
                )
            result.append(out)
        return result

    def _carousel(
        self, stored: Mapping[str, Any], sent: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        sent_cards: dict[int, Sequence[Mapping[str, Any]]] = {}
        for card in (sent or {}).get("cards") or ():
            sent_cards[int(card.get("card_index", len(sent_cards)))] = card.get("components") or ()
        cards = []
        for k, card in enumerate(stored.get("cards") or ()):
            components: list[dict[str, Any]] = []
            for component in card.get("components") or ():
                components.extend(
                    self._component(component, sent_cards.get(k, ()), f"carousel card {k} ")
                )
            cards.append({"components": components})
        return {"type": "carousel", "cards": cards}

    # -- A2.5 freeform -----------------------------------------------------------------------

    def _session_payload(self, endpoint: ProviderEndpoint, item: SessionSend) -> dict[str, Any]:
        content = item.content
        kind = str(content.get("type", ""))
        payload: dict[str, Any] = {
            "payloadVersion": PAYLOAD_VERSION,
            "to": "+" + item.to,
            "wabaNumber": endpoint.mobile_number,
            "isTemplate": False,
            "msgId": item.reference,
        }
        if kind == "text":
            text = content.get("text")
            body = text.get("body", "") if isinstance(text, Mapping) else text
            payload["type"] = "text"
            payload["text"] = {"body": str(body)}
            return payload
        wire_type = _SESSION_MEDIA.get(kind)
        if wire_type is None:
            raise UnsupportedContent(
                f"{kind} messages are not supported by provider kind {self.kind}"
            )
        media = content.get(kind) or {}
        link = media.get("link")
        if not link:
            raise UnsupportedContent(
                f"provider kind {self.kind} needs a media link for {kind} messages; "
                "uploaded media ids cannot be sent"
            )
        inner: dict[str, Any] = {"mediaURL": link}
        if wire_type != "audio" and media.get("caption"):
            inner["caption"] = media["caption"]
        if wire_type == "file" and media.get("filename"):
            inner["filename"] = media["filename"]
        payload["type"] = wire_type
        payload[wire_type] = inner
        return payload

    # -- A3 response -------------------------------------------------------------------------

    def parse_response(
        self, status: int, body: bytes, items: Sequence[OutboundItem]
    ) -> list[SendResult]:
        result = read_answer(status, body)
        return [result] * len(items)  # SendResult is immutable, so sharing is safe

    # -- A4 delivery reports -----------------------------------------------------------------

    def parse_delivery(self, body: bytes) -> list[DeliveryReport]:
        return [
            _delivery_report(entry, n) for n, entry in enumerate(_status_entries(load_json(body)))
        ]

    # -- A5 inbound --------------------------------------------------------------------------

    def parse_inbound(self, body: bytes) -> list[InboundMessage]:
        data = load_json(body)
        if isinstance(data, Mapping) and isinstance(data.get("messages"), list):
            entries: list[Any] = data["messages"]
        elif isinstance(data, list):
            entries = data
        else:
            entries = [data]
        return [_inbound_message(entry, n) for n, entry in enumerate(entries)]

    # -- A2.4 verify -------------------------------------------------------------------------

    def build_verify_request(self, endpoint: ProviderEndpoint) -> HttpRequest:
        # Sent unwrapped (the older revision's shape), as contracts.md A2.4 proposes.
        payload = {
            "payloadVersion": PAYLOAD_VERSION,
            "to": "+" + VERIFY_TO,
            "wabaNumber": endpoint.mobile_number,
            "isTemplate": True,
            "msgId": VERIFY_MSG_ID,
            "template": {"namespace": VERIFY_NAMESPACE, "languageCode": "en"},
            "components": [
                {
                    "type": "body",
                    "body": {
                        "text": "1 code: 2.Valid for 3 minutes.",
                        "parameters": [{"type": "text", "text": v} for v in ("1", "2", "3")],
                    },
                }
            ],
        }
        return json_request(endpoint.endpoint_url, request_headers(endpoint, JSON_HEADERS), payload)

    def parse_verify_response(self, status: int, body: bytes) -> ProviderError | None:
        return read_answer(status, body).error


ADAPTER = GenericAdapter()


# --- template pieces -------------------------------------------------------------------------


def _is_authentication(template: Mapping[str, Any]) -> bool:
    return str(template.get("category", "")).upper() == "AUTHENTICATION"


def _language(template: Mapping[str, Any]) -> str:
    language = template.get("language", "")
    if isinstance(language, Mapping):  # some stores keep Meta's send shape {"code": ...}
        return str(language.get("code", ""))
    return str(language)


def _text_parameters(parameters: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    result = []
    for parameter in parameters:
        out = {"type": "text", "text": parameter_value(parameter)}
        if "parameter_name" in parameter:
            out["parameter_name"] = str(parameter["parameter_name"])
        result.append(out)
    return result


def _body(stored: Mapping[str, Any], sent: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    parameters = (sent or {}).get("parameters") or ()
    text = render_text(str(stored.get("text", "")), send_values(parameters), where)
    return {"type": "body", "body": {"text": text, "parameters": _text_parameters(parameters)}}


def _parameter_object(
    parameters: Sequence[Mapping[str, Any]], kind: str, where: str
) -> Mapping[str, Any]:
    for parameter in parameters:
        if parameter.get("type") == kind and isinstance(parameter.get(kind), Mapping):
            inner: Mapping[str, Any] = parameter[kind]
            return inner
    raise RenderError(where, kind, f"no {kind} given")


def _media_parameter(
    parameters: Sequence[Mapping[str, Any]], kind: str, where: str, provider_kind: str
) -> Mapping[str, Any]:
    media = _parameter_object(parameters, kind, where)
    if not media.get("link"):
        raise UnsupportedContent(
            f"provider kind {provider_kind} needs a media link for the {where}; "
            "uploaded media ids cannot be sent"
        )
    return media


def _url_button(
    button: Mapping[str, Any], parameters: Sequence[Mapping[str, Any]], where: str
) -> dict[str, Any]:
    url = str(button.get("url", ""))
    names = placeholders(url)
    if not names:
        return {"subType": "staticUrl", "parameters": [{"type": "text", "text": url}]}
    if not parameters:
        raise RenderError(where, names[0])
    # The suffix, not the full url: that is what the provider hands on to WhatsApp.
    suffix = parameter_value(parameters[0])
    return {"subType": "dynamicUrl", "parameters": [{"type": "text", "text": suffix}]}


def _limited_time_offer(
    stored: Mapping[str, Any], sent: Mapping[str, Any] | None
) -> dict[str, Any]:
    # Stored either as Meta's {"limited_time_offer": {...}} or flattened (A6 import shape).
    inner = stored.get("limited_time_offer") or stored
    out: dict[str, Any] = {"type": "limited_time_offer", "text": str(inner.get("text", ""))}
    for parameter in (sent or {}).get("parameters") or ():
        offer = parameter.get("limited_time_offer") or {}
        if "expiration_time_ms" in offer:
            expiry = {"expiration_time_ms": offer["expiration_time_ms"]}
            out["parameters"] = [{"type": "limited_time_offer", "limited_time_offer": expiry}]
            return out
    if inner.get("has_expiration"):
        raise RenderError("limited_time_offer", "expiration_time_ms", "no expiration time given")
    return out


# --- A3 ------------------------------------------------------------------------------------


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _message_of(data: Any) -> str | None:
    if not isinstance(data, Mapping):
        return None
    error = data.get("error")
    if isinstance(error, Mapping) and error.get("message"):
        return str(error["message"])
    return str(data["message"]) if data.get("message") else None


def read_answer(status: int, body: bytes) -> SendResult:
    """A3: 200 + ``status: success`` is accepted; 200 + ``failure`` carries a generic code;
    any other HTTP status is an ``http:<status>`` error. A 2xx we cannot read is in doubt:
    the provider may have taken the message."""
    data = _json_or_none(body)
    if 200 <= status <= 299:
        if not isinstance(data, Mapping):
            error = make_error("generic", "bad_response", f"unreadable answer (HTTP {status})")
            return SendResult(False, error, in_doubt=True)
        outcome = str(data.get("status", "")).lower()
        if outcome == "success":
            return SendResult(True)
        if outcome in ("failure", "failed", "fail", "error"):
            error_body = data.get("error")
            code = error_body.get("code") if isinstance(error_body, Mapping) else None
            title = _message_of(data)
            if code is None:
                return SendResult(False, make_error("generic", "unknown", title or "failure"))
            return SendResult(False, make_error("generic", code, title))
        error = make_error("generic", "bad_response", f"unexpected status {outcome!r}")
        return SendResult(False, error, in_doubt=True)
    return SendResult(False, make_error("http", status, _message_of(data)))


# --- A4 ------------------------------------------------------------------------------------


def _get_any_case(data: Mapping[str, Any], key: str) -> Any:
    if key in data:
        return data[key]
    lowered = key.lower()
    for name, value in data.items():
        if name.lower() == lowered:
            return value
    return None


def _status_entries(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if not isinstance(data, Mapping):
        raise CallbackParseError("delivery report must be a JSON object or array")
    statuses = _get_any_case(data, "statuses")
    if isinstance(statuses, list):
        return statuses
    if isinstance(statuses, Mapping):
        return [statuses]
    if "status" in data:  # a single status sent without the list
        return [data]
    raise CallbackParseError("delivery report has no `statuses`")


def _delivery_report(entry: Any, n: int) -> DeliveryReport:
    if not isinstance(entry, Mapping):
        raise CallbackParseError(f"statuses[{n}] is not an object")
    raw_status = entry.get("status")
    if raw_status is None or raw_status == "":
        raise CallbackParseError(f"statuses[{n}] has no status")
    reference = entry.get("msgId") or entry.get("msg_id") or entry.get("msgid")
    extra = {key: entry[key] for key in _CLICK_FIELDS if key in entry}
    return DeliveryReport(
        status=normalize_status(raw_status),
        reference=None if reference is None else str(reference),
        phone=digits(entry.get("to") or entry.get("recipient_id") or entry.get("phone")),
        timestamp=parse_timestamp(entry.get("timestamp")),
        error=_report_error(entry.get("error") or entry.get("errors")),
        extra=extra,
    )


def _report_error(error: Any) -> ProviderError | None:
    if isinstance(error, list):
        error = error[0] if error else None
    if not isinstance(error, Mapping):
        return None
    title = error.get("title") or error.get("message")
    title = None if title is None else str(title)
    code = error.get("code")
    return make_error("generic", "unknown" if code is None else code, title)


# --- A5 ------------------------------------------------------------------------------------


def _inbound_message(entry: Any, n: int) -> InboundMessage:
    if not isinstance(entry, Mapping):
        raise CallbackParseError(f"inbound message {n} is not an object")
    from_phone = digits(entry.get("from"))
    if from_phone is None:
        raise CallbackParseError(f"inbound message {n} has no `from`")
    event_id = entry.get("id") or entry.get("messageId")
    return InboundMessage(
        from_phone=from_phone,
        to_number=digits(entry.get("wabaNumber")),
        timestamp=parse_timestamp(entry.get("timestamp")),
        event_id=None if event_id is None else str(event_id),
        **message_fields(entry),
    )
