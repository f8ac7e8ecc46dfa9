"""Session (free-form) messages: only inside the 24-hour window the customer's last message
opened (whatsapp-rules.md §2.1), in WhatsApp's own message format.

``POST /api/v1/messages/session`` takes ``{"to", "type", <type>: {...}}`` with ``type`` one of
text, image, video, document, audio, and — where the provider kind carries them (msg91) —
interactive (reply buttons, lists) and location. Every limit of §2.3 is checked, all
violations at once; a type the provider kind cannot carry is a 422 naming both; outside the
window a 409 ``window_closed`` says when it closed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging.inbound import window_open_until
from waconnect.messaging.service import PRIORITY_API, NewMessage, _Lookup, enqueue
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.providers.adapters import (
    HttpRequest,
    OutboundItem,
    ProviderEndpoint,
    SessionSend,
    UnsupportedContent,
    get_adapter,
)
from waconnect.providers.models import ProviderConfig
from waconnect.runtime import Runtime
from waconnect.templates.render import RenderError
from waconnect.web.errors import ApiError
from waconnect.workspaces.service import get_workspace, settings_of

__all__ = [
    "SESSION_TYPES",
    "SessionIn",
    "SessionQueued",
    "check_carried",
    "send_session",
    "session_content",
    "validate_session_content",
]

SESSION_TYPES = ("text", "image", "video", "document", "audio", "interactive", "location")
MEDIA_TYPES = ("image", "video", "document", "audio")

# Meta's limits. Text and caption lengths are Meta's message reference (not in §2.3); the
# interactive ones are §2.3. The list body limit follows §2.3's current page (4096).
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
REPLY_BUTTONS = (1, 3)
REPLY_TITLE_LIMIT = 20
REPLY_ID_LIMIT = 256
BUTTON_BODY_LIMIT = 1024
FOOTER_LIMIT = 60
HEADER_TEXT_LIMIT = 60
LIST_BUTTON_LIMIT = 20
LIST_SECTIONS = (1, 10)
LIST_ROWS_LIMIT = 10
SECTION_TITLE_LIMIT = 24
ROW_ID_LIMIT = 200
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
LIST_BODY_LIMIT = 4096
_LINK = re.compile(r"https?://\S+$")


class SessionIn(BaseModel):
    """A free-form message in WhatsApp's format: ``type`` and the object of that type."""

    model_config = ConfigDict(extra="forbid")

    provider_id: int | None = Field(default=None, description="default: the workspace default")
    to: str = Field(min_length=1, max_length=40)
    type: str = Field(description=", ".join(SESSION_TYPES))
    text: dict[str, Any] | str | None = Field(default=None, description='{"body": "..."}')
    image: dict[str, Any] | None = Field(default=None, description="{link, caption?}")
    video: dict[str, Any] | None = Field(default=None, description="{link, caption?}")
    document: dict[str, Any] | None = Field(default=None, description="{link, caption?, filename?}")
    audio: dict[str, Any] | None = Field(default=None, description="{link}")
    interactive: dict[str, Any] | None = Field(
        default=None, description="WhatsApp's interactive object: type button (reply) or list"
    )
    location: dict[str, Any] | None = Field(
        default=None, description="{latitude, longitude, name?, address?}"
    )


class SessionQueued(BaseModel):
    id: int
    status: str
    provider_id: int
    window_closes_at: datetime


# --- the content ------------------------------------------------------------------------------


def session_content(body: SessionIn) -> dict[str, Any]:
    """The stored message: ``{"type": t, t: {...}}`` (text given as a string is wrapped)."""
    kind = body.type.strip().lower()
    value = getattr(body, kind, None) if kind in SESSION_TYPES else None
    if kind == "text" and isinstance(value, str):
        value = {"body": value}
    return {"type": kind, kind: value}


def validate_session_content(content: Mapping[str, Any]) -> dict[str, str]:
    """Every rule the message breaks, as ``{field path: reason}``; empty when it is valid."""
    problems: dict[str, str] = {}
    kind = content.get("type")
    if kind not in SESSION_TYPES:
        problems["type"] = f"unknown type {kind!r}; one of {', '.join(SESSION_TYPES)}"
        return problems
    value = content.get(kind)
    if not isinstance(value, Mapping):
        problems[kind] = f"required for a {kind} message"
        return problems
    if kind == "text":
        _text(problems, "text.body", value.get("body"), TEXT_LIMIT)
    elif kind in MEDIA_TYPES:
        _media(problems, kind, value)
    elif kind == "location":
        _location(problems, value)
    else:
        _interactive(problems, value)
    return problems


def _too_long(problems: dict[str, str], path: str, text: str, limit: int) -> None:
    if len(text) > limit:
        problems[path] = f"{len(text)} characters, the limit is {limit}"


def _text(
    problems: dict[str, str], path: str, value: Any, limit: int, required: bool = True
) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        problems[path] = "required: the text" if value is None else "must be non-empty text"
        return
    _too_long(problems, path, value, limit)


def _media(problems: dict[str, str], kind: str, value: Mapping[str, Any]) -> None:
    link = value.get("link")
    if not isinstance(link, str) or not _LINK.match(link.strip()):
        problems[f"{kind}.link"] = (
            "required: a link starting with https:// (uploaded media ids cannot be sent)"
        )
    allowed = {"link", "caption", "filename", "id"} if kind == "document" else {"link", "id"}
    if kind in ("image", "video"):
        allowed.add("caption")
    for name in sorted(set(value) - allowed):
        problems[f"{kind}.{name}"] = f"a {kind} message takes {', '.join(sorted(allowed))}"
    if "caption" in value and kind != "audio":
        _text(problems, f"{kind}.caption", value.get("caption"), CAPTION_LIMIT)
    if "filename" in value:
        _text(problems, f"{kind}.filename", value.get("filename"), 240)


def _location(problems: dict[str, str], value: Mapping[str, Any]) -> None:
    for name, limit in (("latitude", 90), ("longitude", 180)):
        number = value.get(name)
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
            or not -limit <= number <= limit
        ):
            problems[f"location.{name}"] = f"required: a number from -{limit} to {limit}"
    for name in ("name", "address"):
        if name in value and not isinstance(value[name], str):
            problems[f"location.{name}"] = "must be text"


def _interactive(problems: dict[str, str], value: Mapping[str, Any]) -> None:
    kind = value.get("type")
    action = value.get("action")
    body = value.get("body")
    body_text = body.get("text") if isinstance(body, Mapping) else None
    footer = value.get("footer")
    if footer is not None:
        footer_text = footer.get("text") if isinstance(footer, Mapping) else None
        _text(problems, "interactive.footer.text", footer_text, FOOTER_LIMIT)
    if not isinstance(action, Mapping):
        action = {}
    if kind == "button":
        _text(problems, "interactive.body.text", body_text, BUTTON_BODY_LIMIT)
        _reply_header(problems, value.get("header"))
        _reply_buttons(problems, action.get("buttons"))
    elif kind == "list":
        _text(problems, "interactive.body.text", body_text, LIST_BODY_LIMIT)
        _list_header(problems, value.get("header"))
        _text(problems, "interactive.action.button", action.get("button"), LIST_BUTTON_LIMIT)
        _sections(problems, action.get("sections"))
    else:
        problems["interactive.type"] = (
            f"unknown interactive type {kind!r}; button (reply buttons) or list"
        )


def _reply_header(problems: dict[str, str], header: Any) -> None:
    if header is None:
        return
    kind = header.get("type") if isinstance(header, Mapping) else None
    if kind == "text":
        _text(problems, "interactive.header.text", header.get("text"), HEADER_TEXT_LIMIT)
    elif kind in ("image", "video", "document"):
        media = header.get(kind)
        link = media.get("link") if isinstance(media, Mapping) else None
        if not isinstance(link, str) or not _LINK.match(link.strip()):
            problems[f"interactive.header.{kind}.link"] = "required: a link starting with https://"
    else:
        problems["interactive.header.type"] = "text, image, video or document"


def _list_header(problems: dict[str, str], header: Any) -> None:
    if header is None:
        return
    kind = header.get("type") if isinstance(header, Mapping) else None
    if kind != "text":
        problems["interactive.header.type"] = "a list message's header is text only"
        return
    _text(problems, "interactive.header.text", header.get("text"), HEADER_TEXT_LIMIT)


def _reply_buttons(problems: dict[str, str], buttons: Any) -> None:
    low, high = REPLY_BUTTONS
    if not isinstance(buttons, list) or not low <= len(buttons) <= high:
        count = len(buttons) if isinstance(buttons, list) else 0
        problems["interactive.action.buttons"] = (
            f"{count} buttons; reply-button messages carry {low} to {high}"
        )
        if not isinstance(buttons, list):
            return
    titles: list[str] = []
    for index, button in enumerate(buttons):
        path = f"interactive.action.buttons.{index}"
        reply = button.get("reply") if isinstance(button, Mapping) else None
        if (
            not isinstance(button, Mapping)
            or button.get("type") != "reply"
            or not isinstance(reply, Mapping)
        ):
            problems[path] = '{"type": "reply", "reply": {"id", "title"}}'
            continue
        _text(problems, f"{path}.reply.id", reply.get("id"), REPLY_ID_LIMIT)
        _text(problems, f"{path}.reply.title", reply.get("title"), REPLY_TITLE_LIMIT)
        if isinstance(reply.get("title"), str):
            titles.append(reply["title"].strip())
    repeated = sorted(title for title, count in Counter(titles).items() if count > 1)
    if repeated:
        problems.setdefault(
            "interactive.action.buttons", f"button titles must be unique: {', '.join(repeated)}"
        )


def _sections(problems: dict[str, str], sections: Any) -> None:
    low, high = LIST_SECTIONS
    if not isinstance(sections, list) or not low <= len(sections) <= high:
        count = len(sections) if isinstance(sections, list) else 0
        problems["interactive.action.sections"] = f"{count} sections; a list has {low} to {high}"
        if not isinstance(sections, list):
            return
    rows = 0
    for index, section in enumerate(sections):
        path = f"interactive.action.sections.{index}"
        if not isinstance(section, Mapping):
            problems[path] = "a section is {title?, rows: [...]}"
            continue
        _text(
            problems,
            f"{path}.title",
            section.get("title"),
            SECTION_TITLE_LIMIT,
            required=len(sections) > 1,
        )
        section_rows = section.get("rows")
        if not isinstance(section_rows, list) or not section_rows:
            problems[f"{path}.rows"] = "required: at least one row"
            continue
        rows += len(section_rows)
        for n, row in enumerate(section_rows):
            where = f"{path}.rows.{n}"
            if not isinstance(row, Mapping):
                problems[where] = "a row is {id, title, description?}"
                continue
            _text(problems, f"{where}.id", row.get("id"), ROW_ID_LIMIT)
            _text(problems, f"{where}.title", row.get("title"), ROW_TITLE_LIMIT)
            _text(
                problems,
                f"{where}.description",
                row.get("description"),
                ROW_DESCRIPTION_LIMIT,
                required=False,
            )
    if rows > LIST_ROWS_LIMIT:
        problems.setdefault(
            "interactive.action.sections",
            f"{rows} rows; a list has at most {LIST_ROWS_LIMIT} across all sections",
        )


# --- can this provider carry it ---------------------------------------------------------------


def check_carried(config: ProviderConfig, item: OutboundItem, what: str) -> HttpRequest:
    """Build the provider's request without sending it (and return it, without the config's
    headers and credentials); a 422 naming the message's kind and the provider when the
    provider kind cannot carry it. No secrets are needed for this."""
    endpoint = ProviderEndpoint(
        kind=config.kind,
        endpoint_url=config.endpoint_url,
        mobile_number=config.mobile_number,
    )
    try:
        return get_adapter(config.kind).build_request(endpoint, [item])
    except UnsupportedContent as exc:
        raise ApiError(
            422,
            "unsupported_by_provider",
            f"{what} cannot be sent through provider config {config.id} ({config.nickname}), "
            f"kind {config.kind}: {exc}",
            extra={"provider_id": config.id, "provider_kind": config.kind},
        ) from None
    except RenderError as exc:
        raise ApiError(422, "validation_error", f"{what}: {exc}") from None


# --- sending ----------------------------------------------------------------------------------


def window_closed(config: ProviderConfig, phone: str, closed_at: datetime | None) -> ApiError:
    if closed_at is None:
        message = (
            f"{phone} has never written to provider config {config.id} ({config.nickname}): "
            "no 24-hour window is open; send an approved template instead"
        )
    else:
        message = (
            f"the 24-hour window of {phone} on provider config {config.id} ({config.nickname}) "
            f"closed at {closed_at.isoformat()}; send an approved template instead"
        )
    return ApiError(
        409,
        "window_closed",
        message,
        extra={"closed_at": closed_at.isoformat() if closed_at else None},
    )


async def send_session(
    session: AsyncSession, runtime: Runtime, workspace_id: int, body: SessionIn
) -> SessionQueued:
    """Check the message, the provider and the window; queue it. Commits nothing."""
    content = session_content(body)
    problems = validate_session_content(content)
    settings = settings_of(await get_workspace(session, workspace_id))
    try:
        phone = normalize_phone(body.to, settings.default_country)
    except InvalidPhone as exc:
        problems["to"] = str(exc)
    extra = sorted(
        name
        for name in SESSION_TYPES
        if name != content["type"] and getattr(body, name, None) is not None
    )
    for name in extra:
        problems[name] = f"a {content['type']} message carries no {name}"
    if problems:
        summary = "; ".join(f"{key}: {why}" for key, why in problems.items())
        raise ApiError(422, "validation_error", summary, fields=problems)
    config = await _Lookup(session, workspace_id).provider(body.provider_id)
    check_carried(config, SessionSend("0-0", phone, content), f"a {content['type']} message")
    closes = await window_open_until(session, config.id, phone, workspace_id)
    if closes is None or closes <= runtime.clock.now():
        raise window_closed(config, phone, closes)
    row = NewMessage(
        provider_id=config.id,
        to_phone=phone,
        kind="session",
        content=content,
        source="api",
        priority=PRIORITY_API,
    )
    (message_id,) = await enqueue(session, runtime, workspace_id, [row])
    return SessionQueued(
        id=message_id, status="queued", provider_id=config.id, window_closes_at=closes
    )
