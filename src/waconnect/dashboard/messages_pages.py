"""Messages: the log with filters and cursor pages, and each message with its whole story."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from waconnect.dashboard.auth import Dashboard, DashboardDep
from waconnect.dashboard.forms import Errors, errors_of, pager
from waconnect.dashboard.render import page
from waconnect.messaging import service
from waconnect.messaging.inbound import InboundPage, list_inbound
from waconnect.messaging.schemas import MessageDetail, MessagePage
from waconnect.messaging.states import Status
from waconnect.providers.service import get_provider, list_providers
from waconnect.templates.service import get_template
from waconnect.web.deps import SessionDep
from waconnect.web.errors import ApiError

router = APIRouter(prefix="/messages", include_in_schema=False)

PAGE_SIZE = 50
# A message in these states may still change: its page keeps itself up to date.
_LIVE = {Status.QUEUED, Status.UNKNOWN, Status.SENT}


def _filters(request: Request, providers: dict[int, str]) -> tuple[dict[str, str], Errors]:
    """The filter form's values as given, and what is wrong with them."""
    given = {
        name: request.query_params.get(name, "").strip() for name in ("status", "provider_id", "to")
    }
    errors: Errors = {}
    if given["status"] and given["status"] not in Status.__members__.values():
        errors["status"] = f"{given['status']!r} is not a message state"
    provider = given["provider_id"]
    if provider and not (provider.isdigit() and int(provider) in providers):
        errors["provider_id"] = "choose one of this workspace's providers"
    return given, errors


@router.get("")
async def messages_list(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    configs = await list_providers(session, context.workspace_id)
    providers = {config.id: config.nickname for config in configs}
    filters, errors = _filters(request, providers)
    cursor = request.query_params.get("cursor") or None
    result = MessagePage(items=[], next_cursor=None)
    if not errors:
        try:
            result = await service.list_messages(
                session,
                context.workspace_id,
                filters["status"] or None,
                int(filters["provider_id"]) if filters["provider_id"] else None,
                filters["to"] or None,
                cursor,
                PAGE_SIZE,
            )
        except ApiError as exc:  # a phone that is no phone, a cursor that was edited
            errors = errors_of(exc)
    context_values: dict[str, Any] = {
        "messages": result.items,
        "providers": providers,
        "status_options": [("", "Any status")] + [(s.value, s.value) for s in Status],
        "provider_options": [("", "Any provider")]
        + [(str(pid), name) for pid, name in providers.items()],
        "filters": filters,
        "errors": errors,
        **pager("/messages", filters, cursor, result.next_cursor),
    }
    return page(request, "messages/list.html", context_values, status=422 if errors else 200)


async def _detail(context: Dashboard, session: SessionDep, message_id: int) -> dict[str, Any]:
    detail: MessageDetail = await service.message_detail(session, context.workspace_id, message_id)
    provider = await get_provider(session, context.workspace_id, detail.provider_id)
    template = None
    if detail.template_id is not None:
        try:
            template = await get_template(session, context.workspace_id, detail.template_id)
        except ApiError:
            template = None  # deleted since: the message keeps its content
    return {
        "message": detail,
        "provider": provider,
        "template": template,
        "live": detail.status in _LIVE,
    }


INBOUND_TYPES = [
    "text",
    "button",
    "interactive",
    "image",
    "video",
    "audio",
    "document",
    "location",
    "reaction",
    "unknown",
]


@router.get("/inbound")
async def inbound_list(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    """Replies: who wrote, what, the message it answers, and what waconnect did about it."""
    configs = await list_providers(session, context.workspace_id)
    providers = {config.id: config.nickname for config in configs}
    given = {
        name: request.query_params.get(name, "").strip() for name in ("provider_id", "from", "type")
    }
    errors: Errors = {}
    provider = given["provider_id"]
    if provider and not (provider.isdigit() and int(provider) in providers):
        errors["provider_id"] = "choose one of this workspace's providers"
    if given["type"] and given["type"] not in INBOUND_TYPES:
        errors["type"] = f"{given['type']!r} is not a message type"
    cursor = request.query_params.get("cursor") or None
    result = InboundPage(items=[], next_cursor=None)
    if not errors:
        try:
            result = await list_inbound(
                session,
                context.workspace_id,
                int(provider) if provider else None,
                given["from"] or None,
                given["type"] or None,
                cursor,
                PAGE_SIZE,
            )
        except ApiError as exc:
            errors = errors_of(exc)
    values: dict[str, Any] = {
        "replies": result.items,
        "providers": providers,
        "provider_options": [("", "Any provider")]
        + [(str(pid), name) for pid, name in providers.items()],
        "type_options": [("", "Any type")] + [(t, t) for t in INBOUND_TYPES],
        "filters": given,
        "errors": errors,
        **pager("/messages/inbound", given, cursor, result.next_cursor),
    }
    return page(request, "messages/inbound.html", values, status=422 if errors else 200)


@router.get("/{message_id}")
async def message_page(
    request: Request, message_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    return page(request, "messages/detail.html", await _detail(context, session, message_id))


@router.get("/{message_id}/live")
async def message_live(
    request: Request, message_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    """The changing part of the message page, which polls it while the message may move."""
    return page(request, "messages/_story.html", await _detail(context, session, message_id))


@router.get("/{message_id}/badge")
async def message_badge(
    request: Request, message_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    """A message's status that keeps itself up to date while it may still change."""
    message = await service.get_message(session, context.workspace_id, message_id)
    reached = [
        name
        for name, moment in (
            ("sent", message.sent_at),
            ("delivered", message.delivered_at),
            ("read", message.read_at),
            ("failed", message.failed_at),
        )
        if moment is not None
    ]
    values = {
        "message_id": message.id,
        "status": message.status,
        "reached": reached,
        # A delivered message may still be read: follow it while the dialog is open.
        "live": message.status in _LIVE or message.status == Status.DELIVERED,
    }
    return page(request, "messages/_badge.html", values)
