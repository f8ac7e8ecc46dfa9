"""``/api/v1/messages``: send through the outbox, read status and timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from waconnect.messaging import service
from waconnect.messaging import session as session_messages
from waconnect.messaging.schemas import (
    BatchItem,
    BatchOut,
    MessageBatchIn,
    MessageDetail,
    MessageIn,
    MessagePage,
    Queued,
)
from waconnect.messaging.states import Status
from waconnect.web.deps import PrincipalDep, RuntimeDep, SessionDep
from waconnect.web.errors import error_body

router = APIRouter(tags=["messages"])


@router.post("/messages", response_model=Queued, status_code=202)
async def send_message(
    body: MessageIn, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> Queued:
    message_id = await service.send_one(session, runtime, principal.workspace_id, body)
    await session.commit()
    service.wake_dispatcher(runtime)
    return Queued(id=message_id, status=Status.QUEUED)


@router.post("/messages/batch", response_model=BatchOut, status_code=202)
async def send_batch(
    body: MessageBatchIn, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> BatchOut:
    results = await service.send_batch(session, runtime, principal.workspace_id, body.messages)
    await session.commit()
    service.wake_dispatcher(runtime)
    items = [
        BatchItem(index=index, id=message_id, status=Status.QUEUED)
        if error is None
        else BatchItem(
            index=index,
            error=error_body(error.code, error.message, error.fields, **error.extra)["error"],
        )
        for index, message_id, error in results
    ]
    accepted = sum(1 for item in items if item.error is None)
    return BatchOut(accepted=accepted, rejected=len(items) - accepted, results=items)


@router.post("/messages/session", response_model=session_messages.SessionQueued, status_code=202)
async def send_session_message(
    body: session_messages.SessionIn,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> session_messages.SessionQueued:
    """A free-form message inside the 24-hour window the customer's last message opened:
    text, image, video, document, audio; on msg91 also interactive reply buttons, lists and
    location. Outside the window: 409 ``window_closed`` with ``closed_at``."""
    queued = await session_messages.send_session(session, runtime, principal.workspace_id, body)
    await session.commit()
    service.wake_dispatcher(runtime)
    return queued


@router.get("/messages/counts", response_model=dict[str, int])
async def count_messages(
    principal: PrincipalDep, session: SessionDep, provider_id: int | None = None
) -> dict[str, int]:
    """How many messages are in each state (all states listed, zeros included)."""
    return await service.count_by_status(session, principal.workspace_id, provider_id)


@router.get("/messages/{message_id}", response_model=MessageDetail)
async def get_message(
    message_id: int, principal: PrincipalDep, session: SessionDep
) -> MessageDetail:
    return await service.message_detail(session, principal.workspace_id, message_id)


@router.get("/messages", response_model=MessagePage)
async def list_messages(
    principal: PrincipalDep,
    session: SessionDep,
    status: Annotated[Status | None, Query()] = None,
    provider_id: int | None = None,
    to: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MessagePage:
    return await service.list_messages(
        session, principal.workspace_id, status, provider_id, to, cursor, limit
    )
