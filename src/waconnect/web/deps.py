"""Route dependencies: the runtime, a database session, and the calling workspace.

Put in a route's signature they make its auth and workspace scoping visible at a glance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.clock import Clock
from waconnect.runtime import Runtime
from waconnect.web.errors import ApiError
from waconnect.workspaces.service import Principal, authenticate


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_clock(request: Request) -> Clock:
    return get_runtime(request).clock


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; committed when the route returns without an error."""
    async with get_runtime(request).sessions() as session:
        yield session
        await session.commit()


async def require_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send an API key as 'Authorization: Bearer <key>' (create one: waconnect keys create)",
            extra={},
        )
    runtime = get_runtime(request)
    async with runtime.sessions() as session:
        principal = await authenticate(session, runtime.clock, key.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "this API key is not valid or has been revoked")
    return principal


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ClockDep = Annotated[Clock, Depends(get_clock)]
# "function" scope: committed before the response is sent, so a client never reads its
# own write too early (a revoked key must fail on the very next call).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(require_principal)]
