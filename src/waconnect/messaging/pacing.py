"""Pacing rules shared by everything that sends in bulk (campaigns, journeys).

- **Frequency cap** (workspace setting ``frequency_cap``): at most N WhatsApp messages per
  contact (phone) per rolling H hours, counted across campaigns, journeys and every other
  source. It counts outbox rows, so a message queued a second ago counts as much as one
  delivered an hour ago; rows that never reached the customer (``failed``, ``expired``,
  ``cancelled``) do not count.
- **DND hours** (``dnd`` window ``HH:MM``-``HH:MM`` in local time, may wrap midnight): a
  message due inside the window waits for its end. :func:`next_allowed` answers "when may this
  go out", in the profile's time zone (else the workspace's).

Stable interface (journeys import it)::

    async def capped_phones(session, workspace_id, phones, now, cap) -> set[str]
    async def capped_contacts(session, workspace_id, contact_ids, now, cap) -> set[int]
    def next_allowed(moment, dnd, tz) -> datetime
    def zone(name, fallback) -> ZoneInfo
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.messaging.models import Contact, Message
from waconnect.messaging.states import Status
from waconnect.workspaces.schemas import DndWindow, FrequencyCap

__all__ = [
    "COUNTED_STATUSES",
    "capped_contacts",
    "capped_phones",
    "next_allowed",
    "sent_counts",
    "zone",
]

# A message counts towards the cap unless it never reached (and never will reach) the customer.
COUNTED_STATUSES = (
    Status.QUEUED,
    Status.UNKNOWN,
    Status.SENT,
    Status.DELIVERED,
    Status.READ,
)
_IN_CLAUSE = 500  # phones per IN (...) list: well under every driver's parameter limit


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def sent_counts(
    session: AsyncSession, workspace_id: int, phones: Iterable[str], since: datetime
) -> dict[str, int]:
    """How many counted outbox rows each phone has, created after ``since``."""
    unique = sorted(set(phones))
    counts: dict[str, int] = {}
    for part in _chunks(unique, _IN_CLAUSE):
        rows = await session.execute(
            select(Message.to_phone, func.count())
            .where(
                Message.workspace_id == workspace_id,
                Message.to_phone.in_(part),
                Message.created_at > since,
                Message.status.in_(COUNTED_STATUSES),
            )
            .group_by(Message.to_phone)
        )
        counts.update({phone: int(n) for phone, n in rows.all()})
    return counts


async def capped_phones(
    session: AsyncSession,
    workspace_id: int,
    phones: Iterable[str],
    now: datetime,
    cap: FrequencyCap | None,
) -> set[str]:
    """The phones that already got ``cap.messages`` messages in the last ``cap.hours`` hours.

    With no cap, none. A message to one of them now would break the workspace's cap.
    """
    if cap is None:
        return set()
    counts = await sent_counts(session, workspace_id, phones, now - timedelta(hours=cap.hours))
    return {phone for phone, n in counts.items() if n >= cap.messages}


async def capped_contacts(
    session: AsyncSession,
    workspace_id: int,
    contact_ids: Iterable[int],
    now: datetime,
    cap: FrequencyCap | None,
) -> set[int]:
    """:func:`capped_phones` keyed by contact id (the cap is per phone, i.e. per contact)."""
    ids = sorted(set(contact_ids))
    if cap is None or not ids:
        return set()
    phone_of: dict[str, int] = {}
    for start in range(0, len(ids), _IN_CLAUSE):
        part = ids[start : start + _IN_CLAUSE]
        rows = await session.execute(
            select(Contact.phone, Contact.id).where(
                Contact.workspace_id == workspace_id, Contact.id.in_(part)
            )
        )
        phone_of.update({phone: contact_id for phone, contact_id in rows.all()})
    capped = await capped_phones(session, workspace_id, phone_of, now, cap)
    return {phone_of[phone] for phone in capped}


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The profile's time zone when it names a valid one, else the workspace's."""
    found = _zone(name) if name else None
    return found or _zone(fallback) or ZoneInfo("UTC")


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_allowed(moment: datetime, dnd: DndWindow | None, tz: ZoneInfo | str) -> datetime:
    """The earliest time at or after ``moment`` (aware, UTC) outside the DND window.

    ``dnd`` is local wall-clock time in ``tz``; a window may wrap midnight (21:00-09:00).
    Inside it the answer is the window's end that day (local), returned in UTC; outside it,
    ``moment`` itself. A window whose start equals its end is empty.
    """
    if dnd is None or dnd.start == dnd.end:
        return moment
    if isinstance(tz, str):
        tz = zone(tz, "UTC")
    local = moment.astimezone(tz)
    start, end = _hhmm(dnd.start), _hhmm(dnd.end)
    now_t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= now_t < end
        end_day = local.date()
    else:  # wraps midnight: inside after start today, or before end
        inside = now_t >= start or now_t < end
        end_day = local.date() + timedelta(days=1) if now_t >= start else local.date()
    if not inside:
        return moment
    # Wall-clock end in that zone; fold=0 picks the first of an ambiguous (DST) hour.
    resumed = datetime.combine(end_day, end, tzinfo=tz)
    return max(resumed.astimezone(moment.tzinfo), moment)
