"""Messages API shapes: the template and its parameters in WhatsApp's own send format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from waconnect.workspaces.schemas import Strict


class Language(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str = Field(min_length=2, max_length=20)


class TemplateRef(BaseModel):
    """WhatsApp's send format: ``name``, ``language.code`` and ``components`` with parameters."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=512)
    language: Language
    components: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        # Accept the bare code ("en") as well as WhatsApp's {"code": "en"}.
        return {"code": value} if isinstance(value, str) else value

    @field_validator("components")
    @classmethod
    def _components(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        known = {"header", "body", "button", "limited_time_offer", "carousel"}
        for index, component in enumerate(value):
            kind = str(component.get("type", "")).lower()
            if kind not in known:
                raise ValueError(
                    f"components[{index}].type must be one of {', '.join(sorted(known))}, "
                    f"got {component.get('type')!r}"
                )
        return value


class MessageIn(Strict):
    provider_id: int | None = Field(default=None, description="default: the workspace default")
    to: str = Field(min_length=1, max_length=40)
    template: TemplateRef
    custom_props: dict[str, str] | None = Field(
        default=None, description="key-values carried as customProps on the generic contract"
    )


class MessageBatchIn(Strict):
    messages: list[MessageIn] = Field(min_length=1, max_length=1000)


class Queued(BaseModel):
    id: int
    status: str


class BatchItem(BaseModel):
    index: int
    id: int | None = None
    status: str | None = None
    error: dict[str, Any] | None = None


class BatchOut(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItem]


class AttemptOut(BaseModel):
    number: int
    reference: str
    outcome: str | None
    began_at: datetime
    finished_at: datetime | None
    request: dict[str, Any] | None
    http_status: int | None
    response: str | None
    error: dict[str, str] | None
    provider_request_id: str | None


class TimelineEntry(BaseModel):
    at: datetime
    kind: str  # attempt | report
    detail: dict[str, Any]


class MessageOut(BaseModel):
    id: int
    provider_id: int
    template_id: int | None
    to: str
    kind: str
    source: str
    status: str
    error: dict[str, str] | None
    unknown_reason: str | None
    times: dict[str, datetime | None]
    attempt_count: int
    replied: int
    clicked: int
    content: dict[str, Any]


class MessageDetail(MessageOut):
    attempts: list[AttemptOut]
    timeline: list[TimelineEntry]


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None
