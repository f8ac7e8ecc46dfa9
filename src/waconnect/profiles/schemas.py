"""Profiles, events, segments and imports: API shapes.

Batch bodies take each row as a plain object and the service validates rows one by one, so a
bad row is that row's error and never fails the whole batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from waconnect.profiles.attributes import AttrType
from waconnect.workspaces.schemas import Strict

BATCH_MAX = 1000
Subscription = Literal["subscribed", "unsubscribed"]


def clean_identity(value: str | int | None) -> str | None:
    """Identities are text; a number (a customer id in a spreadsheet) is taken as its digits."""
    if value is None:
        return None
    text = "" if isinstance(value, bool) else str(value).strip()
    if not text or len(text) > 200 or "\x00" in text:
        raise ValueError("an identity is 1 to 200 characters")
    return text


class ProfileIn(Strict):
    """One row of a profile batch: matched by ``identity``, else by ``phone``."""

    identity: str | int | None = Field(default=None, description="your id for this customer")
    phone: str | None = Field(default=None, max_length=40)
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="name -> value; null removes the attribute"
    )
    timezone: str | None = None
    subscription: Subscription | None = None

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: str | int | None) -> str | None:
        return clean_identity(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Kolkata") from exc
        return value


class ProfileBatchIn(Strict):
    profiles: list[Any] = Field(min_length=1, max_length=BATCH_MAX)


class EventIn(Strict):
    identity: str | int | None = None
    phone: str | None = Field(default=None, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)
    ts: datetime | float | None = Field(
        default=None, description="ISO 8601 or epoch seconds; default: now"
    )

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: str | int | None) -> str | None:
        return clean_identity(value)


class EventBatchIn(Strict):
    events: list[Any] = Field(min_length=1, max_length=BATCH_MAX)


class RowResult(BaseModel):
    index: int
    status: Literal["created", "updated", "recorded", "error"]
    id: int | None = None
    error: dict[str, Any] | None = None


class ProfileBatchOut(BaseModel):
    created: int
    updated: int
    rejected: int
    results: list[RowResult]


class EventBatchOut(BaseModel):
    recorded: int
    rejected: int
    results: list[RowResult]


class SubscriptionOut(BaseModel):
    state: str
    source: str | None
    changed_at: datetime | None


class ProfileOut(BaseModel):
    id: int
    identity: str | None
    phone: str | None
    country: str | None
    attributes: dict[str, Any]
    timezone: str | None
    subscription: SubscriptionOut | None = Field(
        description="held on the contact of the phone; null without a phone"
    )
    created_at: datetime
    updated_at: datetime


class TimelineItem(BaseModel):
    at: datetime
    kind: Literal["event", "message", "inbound"]
    detail: dict[str, Any]


class ProfileDetail(ProfileOut):
    timeline: list[TimelineItem] = Field(description="newest first")


class ProfilePage(BaseModel):
    items: list[ProfileOut]
    next_cursor: str | None


class Erased(BaseModel):
    id: int
    erased_at: datetime
    messages: int = Field(description="messages whose personal content was replaced by a hash")
    inbound: int
    callbacks: int


class AttributeOut(BaseModel):
    name: str
    type: AttrType
    created_at: datetime


class AttributeDeclare(Strict):
    type: AttrType


class SegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any]


class SegmentDefinitionIn(Strict):
    definition: dict[str, Any]


class SegmentOut(BaseModel):
    id: int
    name: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SegmentCount(BaseModel):
    count: int


class SegmentPreview(BaseModel):
    count: int
    items: list[ProfileOut]


class ImportJobOut(BaseModel):
    id: int
    state: Literal["queued", "running", "done", "failed", "interrupted"]
    filename: str
    map: list[str] = Field(description="the --map items given, COLUMN=TARGET[:TYPE]")
    columns: list[str] = Field(description="the file's header row")
    bytes_total: int
    bytes_done: int
    progress: float = Field(description="0..1, by bytes read")
    rows: int
    created: int
    updated: int
    errors: int
    error: str | None
    errors_url: str
    created_at: datetime
    finished_at: datetime | None
