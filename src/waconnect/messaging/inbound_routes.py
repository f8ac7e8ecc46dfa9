"""``/api/v1/inbound``: customers' messages, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from waconnect.messaging import inbound
from waconnect.messaging.inbound import InboundPage
from waconnect.web.deps import PrincipalDep, SessionDep

router = APIRouter(tags=["inbound"])


@router.get("/inbound", response_model=InboundPage)
async def list_inbound(
    principal: PrincipalDep,
    session: SessionDep,
    provider_id: int | None = None,
    from_: Annotated[
        str | None, Query(alias="from", description="the sender, in any common phone format")
    ] = None,
    type: Annotated[
        str | None, Query(max_length=20, description="text, button, image, ...")
    ] = None,
    tracked: Annotated[
        bool | None,
        Query(description="true: senders a profile links to; false: untracked senders"),
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> InboundPage:
    return await inbound.list_inbound(
        session, principal.workspace_id, provider_id, from_, type, cursor, limit, tracked
    )
