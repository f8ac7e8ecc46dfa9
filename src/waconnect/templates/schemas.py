"""Template shapes: WhatsApp's own template format plus our status and provider ids.

Structural validation only; the full WhatsApp rules (lengths, counts, button mixes) come with
the templates capability's validator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

STATUSES = (
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "FLAGGED",
    "REINSTATED",
    "PENDING_DELETION",
    "DELETED",
    "LIMIT_EXCEEDED",
    "LOCKED",
    "ARCHIVED",
    "UNARCHIVED",
)
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS", "LIMITED_TIME_OFFER", "CAROUSEL")


class Component(BaseModel):
    # WhatsApp-format objects keep the fields we do not know (new component features).
    model_config = ConfigDict(extra="allow")

    type: str

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        upper = value.upper()
        if upper not in COMPONENT_TYPES:
            raise ValueError(
                f"unknown component type {value!r}; one of {', '.join(COMPONENT_TYPES)}"
            )
        return upper


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=20)
    category: str = "MARKETING"
    components: list[Component] = Field(min_length=1)
    status: str = "APPROVED"
    parameter_format: Literal["positional", "named"] | None = None
    provider_template_id: str | None = Field(default=None, max_length=100)
    namespace: str | None = Field(default=None, max_length=200)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        upper = value.upper()
        if upper not in STATUSES:
            raise ValueError(f"unknown status {value!r}; WhatsApp's are {', '.join(STATUSES)}")
        return upper

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        upper = value.upper()
        if upper not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}; one of {', '.join(CATEGORIES)}")
        return upper

    @field_validator("components")
    @classmethod
    def _one_body(cls, value: list[Component]) -> list[Component]:
        bodies = sum(1 for component in value if component.type == "BODY")
        if bodies != 1:
            raise ValueError(f"a template has exactly one BODY component, got {bodies}")
        for kind in ("HEADER", "FOOTER", "BUTTONS", "LIMITED_TIME_OFFER", "CAROUSEL"):
            if sum(1 for component in value if component.type == kind) > 1:
                raise ValueError(f"a template has at most one {kind} component")
        return value


class TemplateOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    provider_id: int
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]
    parameter_format: str | None = None
    provider_template_id: str | None = None
    namespace: str | None = None
    created_at: datetime
    updated_at: datetime
