"""Template shapes: WhatsApp's own template format plus our status, type and provider ids.

The request models check shape only (which fields, which JSON types). WhatsApp's rules —
lengths, counts, button mixes, variables — are checked as a whole by
``waconnect.templates.validation`` so that every violation is reported at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from waconnect.templates.validation import CATEGORIES, COMPONENT_TYPES, STATUSES

__all__ = [
    "CATEGORIES",
    "COMPONENT_TYPES",
    "STATUSES",
    "ImportOutcome",
    "ImportReport",
    "TemplateIn",
    "TemplateOut",
    "TemplatePatch",
]

# Ours, not WhatsApp's: kept in columns beside the definition, never inside it.
OWN_FIELDS = frozenset({"status", "provider_template_id", "namespace", "type"})


class TemplateIn(BaseModel):
    """A template in WhatsApp's format; unknown fields are kept, so it copies in unchanged."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="lowercase letters, digits and _, at most 512 characters")
    language: str = Field(description="a WhatsApp language code: en, en_US, hi...")
    category: str | None = Field(default=None, description="MARKETING, UTILITY or AUTHENTICATION")
    components: list[dict[str, Any]] = Field(
        description="HEADER, BODY, FOOTER, BUTTONS, LIMITED_TIME_OFFER, CAROUSEL as WhatsApp "
        "writes them, with their example values"
    )
    parameter_format: str | None = Field(default=None, description="positional (default) or named")
    type: str | None = Field(
        default=None,
        description="basic, limited_time_offer, carousel or authentication; derived when left out",
    )
    status: str = Field(default="APPROVED", description="WhatsApp's status name, any case")
    provider_template_id: str | None = Field(default=None, max_length=100)
    namespace: str | None = Field(default=None, max_length=200)


class TemplatePatch(BaseModel):
    """Any fields of :class:`TemplateIn`; the result is validated as a whole template.

    ``components`` replaces the whole list. ``null`` clears ``parameter_format``,
    ``provider_template_id``, ``namespace`` and ``type`` (which is then derived again).
    """

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    language: str | None = None
    category: str | None = None
    components: list[dict[str, Any]] | None = None
    parameter_format: str | None = None
    type: str | None = None
    status: str | None = None
    provider_template_id: str | None = Field(default=None, max_length=100)
    namespace: str | None = Field(default=None, max_length=200)


class TemplateOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    provider_id: int
    name: str
    language: str
    category: str
    type: str
    status: str
    components: list[dict[str, Any]]
    parameter_format: str | None = None
    provider_template_id: str | None = None
    namespace: str | None = None
    created_at: datetime
    updated_at: datetime


class ImportOutcome(BaseModel):
    """What became of one template the provider listed."""

    name: str | None
    language: str | None
    outcome: Literal["created", "updated", "unchanged", "rejected"]
    template_id: int | None = None
    status: str | None = None
    type: str | None = None
    provider_template_id: str | None = None
    violations: dict[str, str] | None = Field(
        default=None, description="for rejected templates: every rule broken, by field path"
    )


class ImportReport(BaseModel):
    provider_id: int
    source: str = Field(description="the URL the templates were read from")
    fetched: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    results: list[ImportOutcome]
