"""Campaign API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from waconnect.workspaces.schemas import DndWindow, Strict

MAX_LIST = 100_000  # phones or identities in one uploaded audience
GOAL_WINDOW_MAX = 150 * 24 * 60  # 150 days, in minutes
SKIP_REASONS = (
    "no_phone",
    "invalid_phone",
    "unknown_identity",
    "duplicate_phone",
    "unsubscribed",
    "capped",
    "missing_variable",
    "no_variant",
)
MESSAGE_STATES = ("queued", "unknown", "sent", "delivered", "read", "expired", "cancelled")
RECIPIENT_STATES = ("control", "skipped", *MESSAGE_STATES, "failed")


class SegmentAudience(Strict):
    segment_id: int = Field(description="the saved segment whose profiles receive it")


class PhonesAudience(Strict):
    phones: list[str] = Field(min_length=1, max_length=MAX_LIST)


class IdentitiesAudience(Strict):
    identities: list[str] = Field(min_length=1, max_length=MAX_LIST)


Audience = SegmentAudience | PhonesAudience | IdentitiesAudience


class VariantIn(Strict):
    name: str | None = Field(default=None, max_length=50, description="A, B, C by default")
    template_id: int
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="the personalization mapping: template key -> literal / attribute source",
    )
    percent: float | None = Field(
        default=None, gt=0, le=100, description="share of the non-control audience"
    )


class TemplateChoice(Strict):
    template_id: int
    variables: dict[str, Any] = Field(default_factory=dict)


class ByProperty(Strict):
    attribute: str = Field(min_length=1, max_length=100, description="e.g. language")
    cases: dict[str, TemplateChoice] = Field(min_length=1, max_length=20)
    default: TemplateChoice | None = Field(
        default=None, description="for profiles whose value has no case; else skipped"
    )


class Schedule(Strict):
    start_at: datetime | None = Field(default=None, description="none: when started")
    cutoff_at: datetime | None = Field(
        default=None, description="unsent messages expire at this time (reason: expired)"
    )

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        if self.start_at and self.cutoff_at and self.cutoff_at <= self.start_at:
            raise ValueError("cutoff_at must be after start_at")
        return self


class Goal(Strict):
    event: str = Field(min_length=1, max_length=200, description="e.g. Purchased")
    window_minutes: int = Field(
        ge=1, le=GOAL_WINDOW_MAX, description="1 minute to 150 days after the campaign reached them"
    )


class CampaignIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    provider_id: int | None = Field(default=None, description="default provider if omitted")
    template_id: int | None = Field(default=None, description="a single template...")
    variables: dict[str, Any] = Field(default_factory=dict)
    variants: list[VariantIn] | None = Field(
        default=None, min_length=2, max_length=3, description="...or A/B/C split by percent..."
    )
    by_property: ByProperty | None = Field(
        default=None, description="...or a template per value of a profile attribute"
    )
    control_percent: float = Field(default=0, ge=0, le=90)
    audience: Audience
    schedule: Schedule = Field(default_factory=Schedule)
    throttle_per_second: float | None = Field(default=None, gt=0, le=10_000)
    dnd: DndWindow | None = Field(
        default=None, description="DND hours for this campaign; default: the workspace's"
    )
    ignore_dnd: bool = Field(default=False, description="send even inside DND hours")
    target_cap: int | None = Field(default=None, ge=1, description="send to at most this many")
    custom_props: dict[str, str] | None = Field(
        default=None, description="key-values carried as customProps (generic providers)"
    )
    quick_reply_payloads: dict[str, str] | None = Field(
        default=None, description="button index -> payload (at most 128 characters)"
    )
    goal: Goal | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a campaign needs a name")
        return value.strip()

    @field_validator("quick_reply_payloads")
    @classmethod
    def _payloads(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for index, payload in (value or {}).items():
            if not index.isdigit():
                raise ValueError(f"keys are button indexes (0, 1, ...), got {index!r}")
            if not payload or len(payload) > 128:
                raise ValueError(f"button {index}: a payload of 1 to 128 characters")
        return value

    @model_validator(mode="after")
    def _one_choice(self) -> CampaignIn:
        given = [
            name
            for name, value in (
                ("template_id", self.template_id),
                ("variants", self.variants),
                ("by_property", self.by_property),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of template_id (one template), variants (A/B/C split) or "
                f"by_property (a template per attribute value); got {', '.join(given) or 'none'}"
            )
        if self.variants is not None:
            percents = [v.percent for v in self.variants]
            if any(p is not None for p in percents):
                if any(p is None for p in percents):
                    raise ValueError("variants: give every variant a percent, or none")
                total = sum(p or 0 for p in percents)
                if abs(total - 100) > 1e-6:
                    raise ValueError(f"variants: percents must add up to 100, got {total:g}")
        return self


class Stats(BaseModel):
    targeted: int = 0
    control: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    queued: int = 0
    unknown: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: dict[str, int] = Field(default_factory=dict)
    expired: int = 0
    cancelled: int = 0
    replied: int = 0
    clicked: int = 0
    conversions: int = 0


class VariantOut(BaseModel):
    number: int
    name: str
    template_id: int
    percent: float | None
    match_value: str | None
    stats: Stats


class Progress(BaseModel):
    recipients: int
    messages: int
    audience_done: bool


class CampaignOut(BaseModel):
    id: int
    name: str
    status: Literal["draft", "scheduled", "running", "paused", "completed", "cancelled"]
    status_reason: str | None
    provider_id: int
    audience: dict[str, Any]
    schedule: Schedule
    throttle_per_second: float | None
    target_cap: int | None
    control_percent: float
    goal: Goal | None
    stats: Stats
    control_conversions: int
    variants: list[VariantOut]
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CampaignSummary(BaseModel):
    id: int
    name: str
    status: str
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CampaignPage(BaseModel):
    items: list[CampaignSummary]
    next_cursor: str | None


class RecipientOut(BaseModel):
    id: int
    position: int
    profile_id: int | None
    phone: str | None
    variant: int | None
    status: str
    skip_reason: str | None
    skip_detail: str | None
    message_id: int | None
    error_code: str | None
    converted_at: datetime | None


class RecipientPage(BaseModel):
    items: list[RecipientOut]
    next_cursor: str | None


class Sample(BaseModel):
    phone: str | None
    profile_id: int | None
    variant: str
    text: str
    components: list[dict[str, Any]]


class PreviewOut(BaseModel):
    audience: int = Field(description="members of the audience (before skips and the cap)")
    would_send: int
    control: int
    skipped: dict[str, int]
    samples: list[Sample]
