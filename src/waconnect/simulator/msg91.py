"""MSG91's native WhatsApp API (contracts Part B): bulk and single sends, the template list."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from waconnect.simulator.core import FAULT_5XX, FAULT_429, FAULT_TIMEOUT, Simulator, is_phone
from waconnect.simulator.responses import SIMULATOR, Rejected, json_response, send_endpoint

UNAUTHORIZED = (
    b'{"status":"fail","hasError":true,"errors":"Unauthorized","code":"401","apiError":"201"}'
)
TOO_MANY_REQUESTS = (
    b'{"status":"fail","hasError":true,"errors":"Too many requests","code":"429","apiError":"429"}'
)
SERVER_ERROR = (
    b'{"status":"fail","hasError":true,"errors":"Internal Server Error","code":"500",'
    b'"apiError":"500"}'
)
ROUTE_MISSING = b'{"type":"error","msg":"Route Missing"}'
BULK_ACCEPTED = "Your request is in process, check delivery reports for status"

_SINGLE_TYPES = frozenset({"template", "text", "interactive", "location"})
_MEDIA_TYPES = frozenset({"image", "video", "document", "audio"})
# B2 component keys: body_N, header_1 (+ _latitude... for a location), button_N, and the same
# prefixed card_K_ inside a carousel.
_BULK_KEY = re.compile(
    r"(?:card_(\d+)_)?(?:(body)_(\d+)|(header)_1(?:_(latitude|longitude|name|address))?|"
    r"(button)_(\d+))"
)
_BUTTON_SUBTYPES = frozenset({"url", "COPY_CODE", "CATALOG", "MPM"})
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
COUPON_LIMIT = 15


def invalid(message: str) -> web.Response:
    """A request MSG91 refuses as a whole (HTTP 400, the envelope with ``hasError``)."""
    return json_response(
        orjson.dumps(
            {
                "status": "fail",
                "hasError": True,
                "data": "Invalid parameter",
                "errors": message,
                "code": "400",
                "apiError": "400",
            }
        ),
        400,
    )


async def _begin(request: web.Request) -> tuple[Simulator, Any] | web.Response:
    """What every native send does first: auth, latency, JSON, faults."""
    sim = request.app[SIMULATOR]
    if not sim.authkey_ok(request.headers):
        sim.stats.rejected += 1
        return json_response(UNAUTHORIZED, 401)
    if sim.options.latency_ms:
        await asyncio.sleep(sim.options.latency_ms / 1000)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        sim.stats.rejected += 1
        return invalid("Request body is not valid JSON")
    if not isinstance(body, dict):
        sim.stats.rejected += 1
        return invalid("Request body must be an object")
    return sim, body


def _fault_response(sim: Simulator, fault: int) -> web.Response | None:
    if fault == FAULT_429:
        sim.stats.faults_429 += 1
        return json_response(TOO_MANY_REQUESTS, 429)
    if fault == FAULT_5XX:
        sim.stats.faults_5xx += 1
        return json_response(SERVER_ERROR, 500)
    return None


async def _send(
    request: web.Request,
    accept: Callable[[Simulator, dict[str, Any]], str],
    answer: Callable[[str], dict[str, Any]],
) -> web.StreamResponse:
    """Auth, faults, validation, acceptance and the late answer of a timeout fault."""
    begun = await _begin(request)
    if isinstance(begun, web.Response):
        return begun
    sim, body = begun
    fault = sim.draw_fault()
    refused = _fault_response(sim, fault)
    if refused is not None:
        return refused
    try:
        accepted_id = accept(sim, body)
    except Rejected as rejected:
        sim.stats.rejected += 1
        return invalid(rejected.message)
    if fault == FAULT_TIMEOUT:
        sim.stats.faults_timeout += 1
        await asyncio.sleep(sim.options.timeout_delay_s)
    return json_response(orjson.dumps(answer(accepted_id)))


@send_endpoint
async def send_bulk(request: web.Request) -> web.StreamResponse:
    """B2: one template to every recipient of every ``to_and_components`` group."""
    return await _send(
        request,
        accept_bulk,
        lambda request_id: {
            "status": "success",
            "hasError": False,
            "data": BULK_ACCEPTED,
            "errors": None,
            "request_id": request_id,
        },
    )


def accept_bulk(sim: Simulator, body: dict[str, Any]) -> str:
    number = _integrated_number(body)
    if body.get("content_type") != "template":
        raise Rejected(400, "content_type must be template")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise Rejected(400, "payload is required")
    name, language, template = _template(sim, payload)
    groups = template.get("to_and_components")
    if not isinstance(groups, list) or not groups:
        raise Rejected(400, "payload.template.to_and_components must be a non-empty list")
    for group in groups:
        if not isinstance(group, dict):
            raise Rejected(400, "to_and_components entries must be objects")
        to = group.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(p, str) for p in to):
            raise Rejected(400, "to must be a non-empty list of numbers as strings")
        components = group.get("components", {})
        if not isinstance(components, dict) or not all(
            isinstance(value, dict) for value in components.values()
        ):
            raise Rejected(400, "components must be an object of objects")
        known = _catalogued(sim, name, language) if sim.options.check_parameter_counts else None
        check_bulk_components(components, known)
    request_id = sim.new_request_id()
    for group in groups:
        components = group.get("components", {})
        what = orjson.dumps(components, option=orjson.OPT_SORT_KEYS)
        quick_replies = [
            (value["payload"], value.get("text") or value["payload"])
            for value in components.values()
            if isinstance(value.get("payload"), str)
        ]
        for phone in group["to"]:
            valid = is_phone(phone) and phone not in sim.options.invalid_numbers
            sim.accept(
                msg91=True,
                key=request_id,
                phone=phone,
                number=number,
                template=name,
                language=language,
                content_type="template",
                # Bad numbers never reach a customer, so they cannot be duplicates.
                dedupe=hash((number, phone, name, language, what)) if valid else None,
                quick_replies=quick_replies,
                valid=valid,
            )
    return request_id


@send_endpoint
async def send_single(request: web.Request) -> web.StreamResponse:
    """B3: one template, text or interactive message to one number."""
    return await _send(
        request,
        accept_single,
        lambda message_uuid: {
            "status": "success",
            "hasError": False,
            "data": {"message_uuid": message_uuid, "status": "message submitted successfully"},
            "errors": None,
        },
    )


def accept_single(sim: Simulator, body: dict[str, Any]) -> str:
    number = _integrated_number(body)
    payload = body.get("payload")
    if payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise Rejected(400, "payload must be an object")
    content_type = body.get("content_type") or payload.get("type")
    phone = body.get("recipient_number") or payload.get("to")
    if not isinstance(phone, str) or not phone:
        raise Rejected(400, "recipient_number is required")
    if not is_phone(phone) or phone in sim.options.invalid_numbers:
        raise Rejected(400, "Invalid recipient number")
    name = language = ""
    quick_replies: list[tuple[str, str]] = []
    if content_type == "template":
        name, language, template = _template(sim, payload)
        components = template.get("components", [])
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise Rejected(400, "template.components must be a list of objects")
        for component in components:
            parameters = component.get("parameters") or []
            if component.get("type") == "button" and isinstance(parameters, list):
                for parameter in parameters:
                    if isinstance(parameter, dict) and isinstance(parameter.get("payload"), str):
                        quick_replies.append((parameter["payload"], parameter["payload"]))
        what: Any = components
    elif content_type == "text":
        text = body.get("text", payload.get("text"))
        if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
            raise Rejected(400, "text.body is required")
        what = text["body"]
    elif content_type == "interactive":
        interactive = body.get("interactive", payload.get("interactive"))
        if not isinstance(interactive, dict) or not isinstance(interactive.get("type"), str):
            raise Rejected(400, "interactive with a type is required")
        action = interactive.get("action")
        buttons = action.get("buttons") if isinstance(action, dict) else None
        for button in buttons if isinstance(buttons, list) else []:
            reply = button.get("reply") if isinstance(button, dict) else None
            if isinstance(reply, dict) and isinstance(reply.get("id"), str):
                quick_replies.append((reply["id"], str(reply.get("title") or reply["id"])))
        what = interactive
        check_interactive(interactive)
    elif content_type == "location":
        location = body.get("location", payload.get("location"))
        if not isinstance(location, dict):
            raise Rejected(400, "location is required")
        for name_, limit in (("latitude", 90), ("longitude", 180)):
            value = location.get(name_)
            if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > limit:
                raise Rejected(400, f"location.{name_} must be a number within ±{limit}")
        what = location
    elif content_type in _MEDIA_TYPES:
        # Media session fields are not documented (B3): only the link is insisted on.
        url = body.get("attachment_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Rejected(400, "attachment_url must be a media URL")
        what = {key: value for key, value in body.items() if key != "integrated_number"}
    else:
        raise Rejected(400, f"content_type {content_type!r} is not supported")
    message_uuid = sim.new_request_id()
    what_bytes = orjson.dumps(what, option=orjson.OPT_SORT_KEYS)
    sim.accept(
        msg91=True,
        key=message_uuid,
        phone=phone,
        number=number,
        template=name,
        language=language,
        content_type=content_type,
        dedupe=hash((number, phone, name, language, what_bytes)),
        quick_replies=quick_replies,
    )
    return message_uuid


# --- what WhatsApp refuses (MSG91 passes the refusal on) -----------------------------------------


def check_interactive(interactive: dict[str, Any]) -> None:
    """Reply buttons and lists within whatsapp-rules.md §2.3; anything else is refused."""
    kind = interactive["type"]
    body = interactive.get("body")
    text = body.get("text") if isinstance(body, dict) else None
    action = interactive.get("action")
    action = action if isinstance(action, dict) else {}
    footer = interactive.get("footer")
    if isinstance(footer, dict) and len(str(footer.get("text", ""))) > 60:
        raise Rejected(400, "interactive.footer.text is longer than 60 characters")
    if kind == "button":
        _limit_text(text, 1024, "interactive.body.text")
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise Rejected(400, "interactive buttons: 1 to 3 reply buttons")
        titles = []
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or button.get("type") != "reply":
                raise Rejected(400, "interactive buttons are {type: reply, reply: {id, title}}")
            _limit_text(reply.get("id"), 256, "reply.id")
            _limit_text(reply.get("title"), 20, "reply.title")
            titles.append(reply["title"])
        if len(set(titles)) != len(titles):
            raise Rejected(400, "reply button titles must be unique")
    elif kind == "list":
        _limit_text(text, 4096, "interactive.body.text")
        _limit_text(action.get("button"), 20, "action.button")
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise Rejected(400, "a list has 1 to 10 sections")
        rows = 0
        for section in sections:
            if not isinstance(section, dict) or not isinstance(section.get("rows"), list):
                raise Rejected(400, "a list section needs rows")
            if len(sections) > 1:
                _limit_text(section.get("title"), 24, "section.title")
            for row in section["rows"]:
                if not isinstance(row, dict):
                    raise Rejected(400, "a list row is {id, title, description?}")
                _limit_text(row.get("id"), 200, "row.id")
                _limit_text(row.get("title"), 24, "row.title")
                if row.get("description") is not None:
                    _limit_text(row["description"], 72, "row.description")
                rows += 1
        if rows > 10:
            raise Rejected(400, f"a list has at most 10 rows, got {rows}")
    else:
        raise Rejected(400, f"interactive type {kind!r} is not supported")


def _limit_text(value: Any, limit: int, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise Rejected(400, f"{where} is required")
    if len(value) > limit:
        raise Rejected(400, f"{where} is longer than {limit} characters")


def _catalogued(sim: Simulator, name: str, language: str) -> dict[str, Any] | None:
    for item in sim.options.catalogue:
        if item.get("name") == name and item.get("language") == language:
            return item
    return None


def check_bulk_components(
    components: dict[str, Any], template: dict[str, Any] | None = None
) -> None:
    """B2 keys and values as MSG91 takes them; with the template known (the catalogue), the
    number of body values must match its variables, as WhatsApp's 132000 demands."""
    bodies: dict[str, list[int]] = {}
    for key, value in components.items():
        match = _BULK_KEY.fullmatch(key)
        if match is None:
            raise Rejected(400, f"unknown component key {key!r}")
        card = match.group(1) or ""
        if match.group(2):
            bodies.setdefault(card, []).append(int(match.group(3)))
            _text_value(key, value)
        elif match.group(4):
            _header_value(key, value, match.group(5))
        else:
            _button_value(key, value)
    for card, numbers in bodies.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            where = f"card {card} body" if card else "body"
            raise Rejected(400, f"{where} values must be numbered from 1 without gaps")
    if template is not None:
        expected = _body_variables(template)
        given = len(bodies.get("", []))
        if expected != given:
            raise Rejected(
                400,
                f"(#132000) Number of parameters does not match the expected number of params "
                f"(body: expected {expected}, got {given})",
            )


def _text_value(key: str, value: dict[str, Any]) -> None:
    text = value.get("value")
    if value.get("type") != "text" or not isinstance(text, str) or not text.strip():
        raise Rejected(400, f"{key} must be {{type: text, value: <non-empty text>}}")


def _header_value(key: str, value: dict[str, Any], location_part: str | None) -> None:
    kind = value.get("type")
    if location_part is not None:
        if kind != "location" or not isinstance(value.get("value"), str):
            raise Rejected(400, f"{key} must be {{type: location, value: <text>}}")
        return
    if kind == "text":
        _text_value(key, value)
    elif kind in ("image", "video", "document"):
        link = value.get("value")
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise Rejected(400, f"{key} value must be a media URL")
        if "filename" in value and kind != "document":
            raise Rejected(400, f"{key}: only a document header has a filename")
    else:
        raise Rejected(400, f"{key} type must be text, image, video, document or location")


def _button_value(key: str, value: dict[str, Any]) -> None:
    subtype = value.get("subtype")
    if subtype not in _BUTTON_SUBTYPES:
        raise Rejected(400, f"{key} subtype must be one of {', '.join(sorted(_BUTTON_SUBTYPES))}")
    if subtype == "url":
        _text_value(key, value)
    elif subtype == "COPY_CODE":
        code = value.get("coupon_code")
        if value.get("type") != "coupon_code" or not isinstance(code, str) or not code:
            raise Rejected(400, f"{key} must be {{type: coupon_code, coupon_code: <code>}}")
        if len(code) > COUPON_LIMIT:
            raise Rejected(400, f"{key} coupon_code is longer than {COUPON_LIMIT} characters")


def _body_variables(template: dict[str, Any]) -> int:
    if str(template.get("category", "")).upper() == "AUTHENTICATION":
        return 1  # WhatsApp's preset text carries the one-time code
    for component in template.get("components") or ():
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
            return len(set(_PLACEHOLDER.findall(str(component.get("text", "")))))
    return 0


def _integrated_number(body: dict[str, Any]) -> str:
    number = body.get("integrated_number")
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    if not isinstance(number, str) or not number.isdigit():
        raise Rejected(400, "integrated_number is required")
    return number


def _template(sim: Simulator, payload: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    template = payload.get("template")
    if not isinstance(template, dict):
        raise Rejected(400, "payload.template is required")
    name = template.get("name")
    if not isinstance(name, str) or not name:
        raise Rejected(400, "payload.template.name is required")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else language
    if not isinstance(code, str) or not code:
        raise Rejected(400, "payload.template.language.code is required")
    known = sim.options.known_templates
    if known and name not in known:
        raise Rejected(400, f"Template {name} not found")
    return name, code, template


async def list_templates(request: web.Request) -> web.StreamResponse:
    """B4: the catalogue grouped by name; filters and ``page_size``/``page_num`` optional."""
    sim = request.app[SIMULATOR]
    if not sim.authkey_ok(request.headers):
        return json_response(UNAUTHORIZED, 401)
    query = request.query
    items = sim.catalogue_by_name
    name = query.get("template_name")
    if name:
        items = [item for item in items if item["name"] == name]
    status = query.get("template_status")
    language = query.get("template_language")
    if status or language:
        filtered = []
        for item in items:
            languages = [
                entry
                for entry in item["languages"]
                if (not status or str(entry["status"]).upper() == status.upper())
                and (not language or entry["language"] == language)
            ]
            if languages:
                filtered.append({**item, "languages": languages})
        items = filtered
    if "page_size" in query or "page_num" in query:
        try:
            size = max(1, int(query.get("page_size", "10")))
            page = max(1, int(query.get("page_num", "1")))
        except ValueError:
            return invalid("page_size and page_num must be integers")
        items = items[(page - 1) * size : page * size]
    else:
        items = items[:500]
    return json_response(
        orjson.dumps({"status": "success", "hasError": False, "data": items, "errors": None})
    )


async def route_missing(request: web.Request) -> web.StreamResponse:
    return json_response(ROUTE_MISSING, 404)
