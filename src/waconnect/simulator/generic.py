"""The generic provider contract MSG91 serves at ``/outbound/clevertap/`` (contracts Part A)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from waconnect.simulator.core import (
    FAULT_5XX,
    FAULT_429,
    FAULT_TIMEOUT,
    VERIFY_NAMESPACE,
    Simulator,
    is_phone,
)
from waconnect.simulator.responses import SIMULATOR, Rejected, json_response, send_endpoint

SUCCESS = b'{"status":"success"}'
TOO_MANY_REQUESTS = b'{"message":"Too many requests to process"}'
UNABLE = b'{"status":"failure","error":{"message":"Unable to process the request"}}'
BAD_REQUEST = b'{"message":"Bad Request"}'
UNAUTHORIZED = b'{"message":"Unauthorized"}'
VALIDATION_MSG_ID = "0|0|0|0"

INVALID_CREDENTIALS = 2000
INVALID_TEMPLATE = 2001
INVALID_NUMBER = 2002
OTHER = 2004

_HEADER_TYPES = frozenset({"text", "image", "video", "file", "document", "audio", "location"})
_MEDIA_TYPES = frozenset({"image", "video", "file", "document", "audio"})
_FREEFORM_TYPES = frozenset({"text", "location", *_MEDIA_TYPES})
_MAX_CARDS = 10
# A2.2's button subTypes.
_BUTTON_SUBTYPES = frozenset({"dynamicUrl", "staticUrl", "callPhone", "copy_code", "quickReply"})


def failure(code: int, message: str) -> web.Response:
    return json_response(
        orjson.dumps({"status": "failure", "error": {"code": code, "message": message}})
    )


@send_endpoint
async def send(request: web.Request) -> web.StreamResponse:
    """A2: a template or freeform send, or the validation payload (wrapped or not)."""
    sim = request.app[SIMULATOR]
    options = sim.options
    if options.latency_ms:
        await asyncio.sleep(options.latency_ms / 1000)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return json_response(BAD_REQUEST, 403)
    if not isinstance(body, dict):
        return json_response(BAD_REQUEST, 403)
    inner = body.get("body")
    if isinstance(inner, dict) and "to" not in body:
        body = inner
    headers = request.headers
    if not (sim.basic_ok(headers) and sim.authkey_ok(headers)):
        sim.stats.rejected += 1
        return failure(INVALID_CREDENTIALS, "Invalid credentials")
    msg_id = body.get("msgId", body.get("msg_id"))
    if msg_id == VALIDATION_MSG_ID:
        # The check a provider config gets when saved: answered, never a message.
        sim.stats.validations += 1
        return json_response(SUCCESS)
    fault = sim.draw_fault()
    if fault == FAULT_429:
        sim.stats.faults_429 += 1
        return json_response(TOO_MANY_REQUESTS, 429)
    if fault == FAULT_5XX:
        sim.stats.faults_5xx += 1
        return json_response(UNABLE, 500)
    try:
        accept(sim, body, msg_id)
    except Rejected as rejected:
        sim.stats.rejected += 1
        return failure(rejected.code, rejected.message)
    if fault == FAULT_TIMEOUT:
        # Accepted and recorded, answered too late: a blind resend becomes a duplicate.
        sim.stats.faults_timeout += 1
        await asyncio.sleep(options.timeout_delay_s)
    return json_response(SUCCESS)


def accept(sim: Simulator, body: dict[str, Any], msg_id: Any) -> None:
    """Validate a generic send as MSG91 would and hand it to the simulator; else ``Rejected``."""
    if not isinstance(msg_id, str) or not msg_id:
        raise Rejected(INVALID_NUMBER, "msgId is required")
    number = body.get("wabaNumber")
    if not isinstance(number, str) or not number:
        raise Rejected(INVALID_NUMBER, "wabaNumber is required")
    to = body.get("to")
    if not isinstance(to, str) or not to:
        raise Rejected(INVALID_NUMBER, "to is required")
    phone = to[1:] if to[0] == "+" else to
    if not is_phone(phone) or phone in sim.options.invalid_numbers:
        raise Rejected(INVALID_NUMBER, "Invalid phone number")
    if len(msg_id) > 60:
        raise Rejected(OTHER, "msgId is longer than 60 characters")
    is_template = body.get("isTemplate")
    if is_template is None:
        is_template = "template" in body
    quick_replies: list[tuple[str, str]] = []
    content_type: Any
    if is_template is True:
        template = body.get("template")
        if not isinstance(template, dict):
            raise Rejected(INVALID_TEMPLATE, "template is required")
        name = template.get("namespace")
        language = template.get("languageCode")
        if not isinstance(name, str) or not name:
            raise Rejected(INVALID_TEMPLATE, "template.namespace is required")
        if not isinstance(language, str) or not language:
            raise Rejected(INVALID_TEMPLATE, "template.languageCode is required")
        known = sim.options.known_templates
        if known and name not in known and name != VERIFY_NAMESPACE:
            raise Rejected(INVALID_TEMPLATE, f"Template {name} not found")
        components = body.get("components", [])
        if not isinstance(components, list):
            raise Rejected(INVALID_TEMPLATE, "components must be a list")
        _check_components(components, quick_replies, in_card=False)
        custom = body.get("customProps")
        if custom is not None:
            _check_custom_props(custom)
        content_type = "template"
    elif is_template is False:
        name = language = ""
        content_type = body.get("type")
        if content_type not in _FREEFORM_TYPES:
            raise Rejected(OTHER, f"Unsupported message type {content_type!r}")
        content = body.get(content_type)
        if not isinstance(content, dict):
            raise Rejected(OTHER, f"{content_type} is required")
        if content_type == "text":
            if not isinstance(content.get("body"), str) or not content["body"]:
                raise Rejected(OTHER, "text.body is required")
        elif content_type == "location":
            if "latitude" not in content or "longitude" not in content:
                raise Rejected(OTHER, "location needs latitude and longitude")
        elif not isinstance(content.get("mediaURL"), str):
            raise Rejected(OTHER, f"{content_type}.mediaURL is required")
    else:
        raise Rejected(OTHER, "isTemplate must be true or false")
    # Our msgIds are "<message id>-<attempt>": two attempts of one message are one message.
    dash = msg_id.rfind("-")
    message_id = msg_id[:dash] if dash > 0 and msg_id[dash + 1 :].isdigit() else msg_id
    sim.accept(
        msg91=False,
        key=msg_id,
        phone=phone,
        number=number,
        template=name,
        language=language,
        content_type=content_type,
        dedupe=hash(("generic", message_id)),
        quick_replies=quick_replies,
    )


def _check_components(
    components: list[Any], quick_replies: list[tuple[str, str]], *, in_card: bool
) -> None:
    for component in components:
        if not isinstance(component, dict):
            raise Rejected(INVALID_TEMPLATE, "a component must be an object")
        kind = component.get("type")
        if kind == "body":
            body = component.get("body")
            if not isinstance(body, dict):
                raise Rejected(INVALID_TEMPLATE, "body component needs a body object")
            if "text" in body and not isinstance(body["text"], str):
                raise Rejected(INVALID_TEMPLATE, "body.text must be a string")
            _check_parameters(body.get("parameters", []), "body")
        elif kind == "header":
            _check_header(component.get("header"))
        elif kind == "footer":
            footer = component.get("footer", component.get("footertext"))
            if not isinstance(footer, str):
                raise Rejected(INVALID_TEMPLATE, "footer must be a string")
        elif kind == "button":
            _check_button(component, quick_replies)
        elif kind == "limited_time_offer":
            if in_card:
                raise Rejected(INVALID_TEMPLATE, "a carousel card cannot hold a limited-time offer")
            _check_parameters(component.get("parameters", []), "limited_time_offer")
        elif kind == "carousel":
            if in_card:
                raise Rejected(INVALID_TEMPLATE, "carousels do not nest")
            cards = component.get("cards")
            if not isinstance(cards, list) or not 1 <= len(cards) <= _MAX_CARDS:
                raise Rejected(INVALID_TEMPLATE, "a carousel needs 1 to 10 cards")
            for card in cards:
                if not isinstance(card, dict) or not isinstance(card.get("components"), list):
                    raise Rejected(INVALID_TEMPLATE, "a carousel card needs components")
                _check_components(card["components"], quick_replies, in_card=True)
        elif kind is None and "customProps" in component:
            _check_custom_props(component["customProps"])
        else:
            raise Rejected(INVALID_TEMPLATE, f"unknown component type {kind!r}")


def _check_header(header: Any) -> None:
    if not isinstance(header, dict):
        raise Rejected(INVALID_TEMPLATE, "header component needs a header object")
    kind = header.get("type")
    if kind not in _HEADER_TYPES:
        raise Rejected(INVALID_TEMPLATE, f"unknown header type {kind!r}")
    content = header.get(kind)
    if not isinstance(content, dict):
        raise Rejected(INVALID_TEMPLATE, f"header.{kind} must be an object")
    if kind == "text":
        if "text" in content and not isinstance(content["text"], str):
            raise Rejected(INVALID_TEMPLATE, "header text must be a string")
        _check_parameters(content.get("parameters", []), "header")
    elif kind == "location":
        if "latitude" not in content or "longitude" not in content:
            raise Rejected(INVALID_TEMPLATE, "location header needs latitude and longitude")
    elif not isinstance(content.get("mediaURL"), str) or not content["mediaURL"]:
        raise Rejected(INVALID_TEMPLATE, f"{kind} header needs a mediaURL")


def _check_button(component: dict[str, Any], quick_replies: list[tuple[str, str]]) -> None:
    index = component.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise Rejected(INVALID_TEMPLATE, "button index must be a non-negative integer")
    sub_type = component.get("subType")
    if not isinstance(sub_type, str) or not sub_type:
        raise Rejected(INVALID_TEMPLATE, "button subType is required")
    if sub_type not in _BUTTON_SUBTYPES:
        raise Rejected(INVALID_TEMPLATE, f"unknown button subType {sub_type!r}")
    parameters = component.get("parameters", [])
    _check_parameters(parameters, "button")
    if sub_type == "quickReply":
        text = component.get("buttonText")
        payload = next(
            (p.get("payload") for p in parameters if p.get("type") == "payload"),
            None,
        )
        if payload is not None and not isinstance(payload, str):
            raise Rejected(INVALID_TEMPLATE, "quick reply payload must be a string")
        label = text if isinstance(text, str) and text else (payload or f"Button {index + 1}")
        # As WhatsApp does, a tap on a button sent without payload carries the button text.
        quick_replies.append((payload or label, label))
    elif sub_type in ("dynamicUrl", "staticUrl", "callPhone") and not any(
        isinstance(p.get("text"), str) for p in parameters
    ):
        raise Rejected(INVALID_TEMPLATE, f"{sub_type} button needs a text parameter")
    elif sub_type == "copy_code" and not any(
        isinstance(p.get("coupon_code"), str) for p in parameters
    ):
        raise Rejected(INVALID_TEMPLATE, "copy_code button needs a coupon_code parameter")


def _check_parameters(parameters: Any, where: str) -> None:
    if not isinstance(parameters, list):
        raise Rejected(INVALID_TEMPLATE, f"{where} parameters must be a list")
    for parameter in parameters:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("type"), str):
            raise Rejected(INVALID_TEMPLATE, f"{where} parameters must be objects with a type")
        if parameter["type"] == "text" and (
            not isinstance(parameter.get("text"), str) or not parameter["text"].strip()
        ):
            # WhatsApp refuses an empty parameter value.
            raise Rejected(INVALID_TEMPLATE, f"{where} text parameter needs a non-empty text")


def _check_custom_props(custom: Any) -> None:
    if not isinstance(custom, list) or not all(isinstance(item, dict) for item in custom):
        raise Rejected(INVALID_TEMPLATE, "customProps must be a list of objects")


async def import_templates(request: web.Request) -> web.StreamResponse:
    """A6: the catalogue in Meta format, ``?limit=`` (1-500, default 50) and ``&after=``."""
    sim = request.app[SIMULATOR]
    headers = request.headers
    if not (sim.basic_ok(headers) and sim.authkey_ok(headers)):
        return json_response(UNAUTHORIZED, 401)
    query = request.query
    try:
        limit = min(500, max(1, int(query.get("limit", "50"))))
        start = _cursor_offset(query["after"]) if "after" in query else 0
    except ValueError:
        return json_response(BAD_REQUEST, 400)
    catalogue = sim.options.catalogue
    page = catalogue[start : start + limit]
    end = start + len(page)
    paging: dict[str, Any] = {"cursors": {"before": _cursor(start)}}
    if end < len(catalogue):
        paging["cursors"]["after"] = _cursor(end)
        paging["next"] = str(request.url.update_query(after=_cursor(end), limit=str(limit)))
    return json_response(orjson.dumps({"data": page, "paging": paging}))


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("bad cursor") from error
    prefix, _, offset = text.partition(":")
    if prefix != "offset" or not offset.isdigit():
        raise ValueError("bad cursor")
    return int(offset)
