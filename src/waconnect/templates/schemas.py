"""Template shapes: WhatsApp's own template format plus our status, type and provider ids.

The request models check shape only (which fields, which JSON types). WhatsApp's rules —
lengths, counts, button mixes, variables — are checked as a whole by
``waconnect.templates.validation`` so that every violation is reported at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    "TemplatePreviewIn",
    "TemplatePreviewOut",
    "TestRecipientOut",
    "TestSendIn",
    "TestSendOut",
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


# --- test sends ---------------------------------------------------------------------------------

TEST_RECIPIENTS_MAX = 10


class TestSendIn(BaseModel):
    """Up to 10 phones and/or profile ids, and the personalization mapping."""

    __test__ = False  # not a pytest class, whatever its name says

    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(default_factory=list, description="phone numbers, any common form")
    profile_ids: list[int] = Field(default_factory=list)
    mapping: dict[str, Any] = Field(
        default_factory=dict,
        description='variable key -> {"literal": ...} | {"attribute": name}, optional "default" '
        "(keys: body.1, body.first_name, header.1, header.media, header.location, buttons.0.1, "
        "lto.expiration, cards.0.body.1, cards.0.header.media...)",
    )
    fill_examples: bool = Field(
        default=True, description="fill unmapped variables with the template's sample values"
    )
    custom_props: dict[str, str] | None = Field(
        default=None, description="key-values carried as customProps on the generic contract"
    )
    wait_seconds: float = Field(
        default=5.0, ge=0, le=5, description="how long to wait for the provider's answers"
    )

    @model_validator(mode="after")
    def _some_recipients(self) -> TestSendIn:
        count = len(self.to) + len(self.profile_ids)
        if count == 0:
            raise ValueError("give at least one phone number (to) or profile id (profile_ids)")
        if count > TEST_RECIPIENTS_MAX:
            raise ValueError(
                f"{count} recipients; a test send goes to at most {TEST_RECIPIENTS_MAX}"
            )
        return self


class TestRecipientOut(BaseModel):
    """What happened for one recipient.

    ``outcome``: ``accepted`` (the provider took it; later statuses on GET /messages/{id}),
    ``failed``, ``retrying`` (throttled or a transient error: it will be retried),
    ``in_doubt``, ``waiting`` (no answer within the wait), ``skipped`` (never sent, see
    ``reason``: ``missing_variable:<key>``).
    """

    __test__ = False

    to: str
    profile_id: int | None = None
    message_id: int | None = None
    outcome: str = "queued"
    ok: bool | None = None
    reason: str | None = None
    preview: str | None = None
    message_status: str | None = None
    attempt: int | None = None
    request: dict[str, Any] | None = Field(
        default=None, description="the exact request sent, secrets masked"
    )
    http_status: int | None = None
    response: str | None = Field(default=None, description="the provider's answer, as sent")
    error: dict[str, str] | None = None


class TestSendOut(BaseModel):
    __test__ = False

    template_id: int
    provider_id: int
    provider_kind: str
    complete: bool = Field(description="every recipient has the provider's answer (or was skipped)")
    message_ids: list[int]
    results: list[TestRecipientOut]


class TemplatePreviewIn(BaseModel):
    """What to fill the template with: a mapping and sample values (or a profile's)."""

    model_config = ConfigDict(extra="forbid")

    mapping: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="sample profile attributes"
    )
    profile_id: int | None = Field(default=None, description="use this profile's attributes")
    event_properties: dict[str, Any] | None = Field(
        default=None, description="sample event properties (allows event_property sources)"
    )
    fill_examples: bool = Field(
        default=True, description="fill unmapped variables with the template's sample values"
    )
    to: str = Field(default="919999999999", description="the phone shown in the request")


class TemplatePreviewOut(BaseModel):
    template_id: int
    provider_id: int
    provider_kind: str
    preview: str = Field(description="the message as the customer reads it, in plain text")
    components: list[dict[str, Any]] = Field(description="WhatsApp send-format components")
    request: dict[str, Any] = Field(
        description="the request the provider kind would get (url and body; no headers)"
    )
