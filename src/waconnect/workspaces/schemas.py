"""Workspace settings and API key shapes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Strict(BaseModel):
    """Our own resources refuse unknown fields (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class DndWindow(Strict):
    start: str = Field(description="HH:MM local time when do-not-disturb starts, e.g. 21:00")
    end: str = Field(description="HH:MM local time when it ends, e.g. 09:00")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"must be a time as HH:MM (00:00 to 23:59), got {value!r}")
        return value


class FrequencyCap(Strict):
    messages: int = Field(ge=1, le=1000, description="at most this many WhatsApp messages")
    hours: int = Field(ge=1, le=24 * 30, description="per profile per rolling this many hours")


class WorkspaceSettings(Strict):
    default_country: str = Field(default="IN", description="ISO 3166 code for national numbers")
    timezone: str = "Asia/Kolkata"
    dnd: DndWindow | None = None
    frequency_cap: FrequencyCap | None = None
    opt_out_keywords: list[str] = Field(default_factory=lambda: ["STOP", "UNSUBSCRIBE"])
    opt_in_keywords: list[str] = Field(default_factory=lambda: ["START"])
    # The business attests it collected opt-in (WhatsApp requires it): new contacts start
    # subscribed.
    new_contact_subscription: Literal["subscribed", "unsubscribed"] = "subscribed"
    in_doubt_policy: Literal["hold", "resend"] = "hold"
    in_doubt_wait_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    message_expiry_hours: int = Field(default=24, ge=1, le=7 * 24)

    @field_validator("default_country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 country code phone numbers know")
        return code

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Kolkata") from exc
        return value

    @field_validator("opt_out_keywords", "opt_in_keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = [word.strip() for word in value if word.strip()]
        if any(len(word) > 50 for word in cleaned):
            raise ValueError("keywords are at most 50 characters")
        return cleaned


class WorkspaceSettingsPatch(Strict):
    default_country: str | None = None
    timezone: str | None = None
    dnd: DndWindow | None = None
    frequency_cap: FrequencyCap | None = None
    opt_out_keywords: list[str] | None = None
    opt_in_keywords: list[str] | None = None
    new_contact_subscription: Literal["subscribed", "unsubscribed"] | None = None
    in_doubt_policy: Literal["hold", "resend"] | None = None
    in_doubt_wait_minutes: int | None = None
    message_expiry_hours: int | None = None


class WorkspaceOut(BaseModel):
    id: int
    name: str
    settings: WorkspaceSettings
    created_at: datetime


class ApiKeyCreate(Strict):
    label: str = Field(default="", max_length=200)


class ApiKeyOut(BaseModel):
    id: int
    label: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself; shown once, stored only as a hash")
