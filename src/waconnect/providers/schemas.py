"""Provider config shapes, as the "WhatsApp Connect" settings of an engagement suite have them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.workspaces.schemas import Strict

ProviderKind = Literal["generic", "msg91", "sandbox"]
MIN_CONCURRENCY, MAX_CONCURRENCY = 30, 1000
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name, header_value in value.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if "\r" in header_value or "\n" in header_value:
            raise ValueError(f"the value of header {name!r} contains a line break")
        if len(header_value) > 4096:
            raise ValueError(f"the value of header {name!r} is over 4096 characters")
    return value


class AuthNone(Strict):
    type: Literal["none"] = "none"


class AuthBasic(Strict):
    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


Auth = Annotated[AuthNone | AuthBasic, Field(discriminator="type")]


class CallbackHeader(Strict):
    name: str
    value: str = Field(min_length=1, max_length=4096)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid HTTP header name")
        return value


class TemplateImportSetup(Strict):
    """Where templates are imported from: msg91's template API, or a generic paged GET (A6)."""

    url: str | None = Field(default=None, description="generic: the import endpoint (GET)")
    api_base: str | None = Field(
        default=None, description="msg91: the template API base (default control.msg91.com)"
    )
    auth: Auth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=50, ge=50, le=500)
    click_tracking_domain: str | None = None

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_headers(value)


class AutoReply(Strict):
    enabled: bool = False
    text: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _text_when_enabled(self) -> AutoReply:
        if self.enabled and not (self.text or "").strip():
            raise ValueError("text is required when the auto-reply is enabled")
        return self


class ProviderOptions(Strict):
    batch_size: int = Field(
        default=100, ge=1, le=1000, description="msg91: recipients per bulk request"
    )


def _concurrency(value: int | None) -> int | None:
    if value is not None and not MIN_CONCURRENCY <= value <= MAX_CONCURRENCY:
        raise ValueError(f"must be between {MIN_CONCURRENCY} and {MAX_CONCURRENCY}, got {value}")
    return value


def _mobile(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        # A WhatsApp sender number is always written with its country code.
        return normalize_phone(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from exc


def _request_type(value: str | None) -> str | None:
    if value is not None and value.upper() != "POST":
        raise ValueError(f"only POST is supported, got {value!r}")
    return None if value is None else "POST"


class _ProviderFields(Strict):
    @field_validator("max_concurrency", check_fields=False)
    @classmethod
    def _check_concurrency(cls, value: int | None) -> int | None:
        return _concurrency(value)

    @field_validator("mobile_number", check_fields=False)
    @classmethod
    def _check_mobile(cls, value: str | None) -> str | None:
        return _mobile(value)

    @field_validator("request_type", check_fields=False)
    @classmethod
    def _check_request_type(cls, value: str | None) -> str | None:
        return _request_type(value)

    @field_validator("headers", check_fields=False)
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _check_headers(value)

    @field_validator("nickname", check_fields=False)
    @classmethod
    def _check_nickname(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value


class ProviderCreate(_ProviderFields):
    nickname: str = Field(max_length=100)
    kind: ProviderKind
    mobile_number: str
    request_type: str = "POST"
    endpoint_url: str | None = Field(
        default=None, description="required for generic; msg91 and sandbox have defaults"
    )
    auth: Auth = Field(default_factory=AuthNone)
    headers: dict[str, str] = Field(default_factory=dict)
    callback_header: CallbackHeader | None = None
    templates: TemplateImportSetup | None = None
    is_default: bool = False
    auto_reply: AutoReply = Field(default_factory=AutoReply)
    max_concurrency: int = 100
    options: ProviderOptions = Field(default_factory=ProviderOptions)


class ProviderPatch(_ProviderFields):
    nickname: str | None = Field(default=None, max_length=100)
    mobile_number: str | None = None
    request_type: str | None = None
    endpoint_url: str | None = None
    auth: Auth | None = None
    headers: dict[str, str] | None = None
    callback_header: CallbackHeader | None = None
    templates: TemplateImportSetup | None = None
    is_default: bool | None = None
    auto_reply: AutoReply | None = None
    max_concurrency: int | None = None
    options: ProviderOptions | None = None


class RotateToken(Strict):
    grace_hours: float | None = Field(
        default=None, ge=0, le=24 * 30, description="how long the old token keeps working"
    )


class CallbackUrls(BaseModel):
    inbound_url: str
    delivery_url: str
    previous_token_valid_until: datetime | None = None


class ProviderOut(BaseModel):
    id: int
    nickname: str
    kind: ProviderKind
    mobile_number: str
    request_type: str
    endpoint_url: str
    auth: dict[str, Any]
    headers: dict[str, str]
    callback_header: dict[str, str] | None
    templates: dict[str, Any] | None
    is_default: bool
    auto_reply: AutoReply
    max_concurrency: int
    options: ProviderOptions
    callbacks: CallbackUrls
    created_at: datetime
    updated_at: datetime
