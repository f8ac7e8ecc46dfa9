"""Segments: saved definitions, counted and previewed with one SQL query each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.db.base import is_storable_id
from waconnect.profiles.compiler import count_query, ids_query
from waconnect.profiles.definition import DefinitionError, Node, parse_definition
from waconnect.profiles.models import Segment
from waconnect.profiles.schemas import ProfileOut
from waconnect.profiles.service import dialect_of, load_registry, profiles_by_ids
from waconnect.web.errors import conflict, invalid, not_found


async def compile_definition(session: AsyncSession, workspace_id: int, raw: Any) -> Node:
    """The parsed definition, typed by the workspace's attributes; a 422 naming what is wrong."""
    try:
        return parse_definition(raw, await load_registry(session, workspace_id))
    except DefinitionError as exc:
        raise invalid({exc.path: exc.message}) from None


async def create_segment(
    session: AsyncSession, now: datetime, workspace_id: int, name: str, definition: dict[str, Any]
) -> Segment:
    await compile_definition(session, workspace_id, definition)
    segment = Segment(
        workspace_id=workspace_id,
        name=name.strip(),
        definition=definition,
        created_at=now,
        updated_at=now,
    )
    session.add(segment)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise conflict(f"a segment named {name.strip()!r} exists already") from None
    return segment


async def get_segment(session: AsyncSession, workspace_id: int, segment_id: int) -> Segment:
    segment = await session.get(Segment, segment_id) if is_storable_id(segment_id) else None
    if segment is None or segment.workspace_id != workspace_id:
        raise not_found(f"segment {segment_id}")
    return segment


async def list_segments(session: AsyncSession, workspace_id: int) -> list[Segment]:
    rows = await session.scalars(
        select(Segment).where(Segment.workspace_id == workspace_id).order_by(Segment.id)
    )
    return list(rows)


async def delete_segment(session: AsyncSession, workspace_id: int, segment_id: int) -> None:
    await session.delete(await get_segment(session, workspace_id, segment_id))
    await session.flush()


async def count(session: AsyncSession, now: datetime, workspace_id: int, node: Node) -> int:
    dialect = dialect_of(session)
    query = count_query(node, dialect, workspace_id, now)
    return int(await session.scalar(query) or 0)


async def matching_ids(
    session: AsyncSession, now: datetime, workspace_id: int, node: Node, limit: int | None = None
) -> list[int]:
    """Ids of the matching profiles, newest first (campaigns and journeys read this too)."""
    dialect = dialect_of(session)
    query = ids_query(node, dialect, workspace_id, now, limit)
    return list(await session.scalars(query))


async def preview(
    session: AsyncSession, now: datetime, workspace_id: int, node: Node, limit: int
) -> list[ProfileOut]:
    ids = await matching_ids(session, now, workspace_id, node, limit)
    return await profiles_by_ids(session, workspace_id, ids)
