"""Between HTML forms and the services' schemas.

A form's field names are the schema's field paths (``auth.username``, ``dnd.start``), so an
error from the schema or the service lands next to the field it is about. Values stay strings
here; the schemas convert and check them, with the same messages the API gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.datastructures import FormData

from waconnect.providers.schemas import ProviderOut
from waconnect.web.errors import ApiError, invalid_from
from waconnect.workspaces.schemas import WorkspaceSettings

Errors = dict[str, str]


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def raw(form: FormData, name: str) -> str:
    """Like ``_text`` but unstripped: passwords and header values are taken as typed."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def rows(form: FormData, prefix: str, parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The rows of a table of fields named ``prefix.part`` (header rows, buttons, conditions),
    each a tuple of unstripped strings in the order of ``parts``."""
    columns = [
        [value if isinstance(value, str) else "" for value in form.getlist(f"{prefix}.{part}")]
        for part in parts
    ]
    return list(zip(*columns, strict=False))


def page_url(path: str, filters: dict[str, str], cursor: str | None) -> str:
    """A list page's URL with its filters and, for older pages, the cursor."""
    query = {name: value for name, value in filters.items() if value}
    if cursor:
        query["cursor"] = cursor
    return path + (f"?{urlencode(query)}" if query else "")


def pager(
    path: str, filters: dict[str, str], cursor: str | None, next_cursor: str | None
) -> dict[str, str | None]:
    """The links of a cursor-paged list: to older entries, and back to the newest."""
    return {
        "older_url": page_url(path, filters, next_cursor) if next_cursor else None,
        "newest_url": page_url(path, filters, None) if cursor else None,
    }


def require_confirmation(form: FormData, what: str) -> None:
    """Refuse a delete whose confirmation box was not ticked (no script needed to ask)."""
    if form.get("confirm") != "yes":
        raise ApiError(422, "validation_error", f"tick the confirmation box to delete {what}")


def errors_of(exc: ApiError | ValidationError) -> Errors:
    """Field errors keyed by form field; an error about no field is under ``form``."""
    if isinstance(exc, ValidationError):
        exc = invalid_from(exc)
    if not exc.fields:
        return {"form": exc.message}
    errors: Errors = {}
    for path, why in exc.fields.items():
        errors.setdefault(_form_field(path), _plain(why))
    return errors


def _plain(why: str) -> str:
    # An empty box is "required" to a person, not a string length.
    return "required" if why == "String should have at least 1 character" else why


def _form_field(path: str) -> str:
    parts = path.split(".")
    head = parts[0]
    if head == "auth":
        # Drop pydantic's union tag (auth.basic.password); a bad type is about the radio group.
        return "auth." + parts[-1] if len(parts) > 2 else "auth.type"
    if head == "auto_reply":
        return "auto_reply.text"
    if head == "headers":
        return "headers"
    if head == "callback_header" and len(parts) == 1:
        return "callback_header.name"
    if head in ("dnd", "frequency_cap") and len(parts) == 1:
        return f"{head}.enabled"
    return path


# --- provider configs ---------------------------------------------------------------------------


@dataclass
class ProviderForm:
    """What the provider form shows, as strings: from a request, or from a stored config."""

    nickname: str = ""
    kind: str = "generic"
    mobile_number: str = ""
    request_type: str = "POST"
    endpoint_url: str = ""
    auth_type: str = "none"
    auth_username: str = ""
    auth_password: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    callback_header_enabled: bool = False
    callback_header_name: str = ""
    callback_header_value: str = ""
    is_default: bool = False
    auto_reply_enabled: bool = False
    auto_reply_text: str = ""
    max_concurrency: str = "100"
    batch_size: str = "100"

    @classmethod
    def from_request(cls, form: FormData) -> ProviderForm:
        headers = [
            (name.strip(), value)
            for name, value in rows(form, "headers", ("name", "value"))
            if name.strip() or value
        ]
        return cls(
            nickname=text(form, "nickname"),
            kind=text(form, "kind", "generic"),
            mobile_number=text(form, "mobile_number"),
            request_type=text(form, "request_type", "POST"),
            endpoint_url=text(form, "endpoint_url"),
            auth_type=text(form, "auth.type", "none"),
            auth_username=text(form, "auth.username"),
            auth_password=raw(form, "auth.password"),
            headers=headers,
            callback_header_enabled=checked(form, "callback_header.enabled"),
            callback_header_name=text(form, "callback_header.name"),
            callback_header_value=raw(form, "callback_header.value"),
            is_default=checked(form, "is_default"),
            auto_reply_enabled=checked(form, "auto_reply.enabled"),
            auto_reply_text=text(form, "auto_reply.text"),
            max_concurrency=text(form, "max_concurrency"),
            batch_size=text(form, "options.batch_size", "100"),
        )

    @classmethod
    def from_config(cls, out: ProviderOut) -> ProviderForm:
        """The stored config; secrets come masked, and a masked value sent back keeps the secret."""
        header = out.callback_header or {}
        return cls(
            nickname=out.nickname,
            kind=out.kind,
            mobile_number=out.mobile_number,
            request_type=out.request_type,
            endpoint_url=out.endpoint_url,
            auth_type=str(out.auth.get("type", "none")),
            auth_username=str(out.auth.get("username") or ""),
            auth_password=str(out.auth.get("password") or ""),
            headers=list(out.headers.items()),
            callback_header_enabled=bool(header),
            callback_header_name=header.get("name", ""),
            callback_header_value=header.get("value", ""),
            is_default=out.is_default,
            auto_reply_enabled=out.auto_reply.enabled,
            auto_reply_text=out.auto_reply.text or "",
            max_concurrency=str(out.max_concurrency),
            batch_size=str(out.options.batch_size),
        )

    def header_errors(self) -> Errors:
        """What a header table can get wrong that a name -> value mapping cannot show."""
        seen: set[str] = set()
        for name, _value in self.headers:
            if not name:
                return {"headers": "every header with a value needs a name"}
            if name.lower() in seen:
                return {"headers": f"the header {name!r} is given twice"}
            seen.add(name.lower())
        return {}

    def payload(self, *, creating: bool) -> dict[str, Any]:
        """The body the API would receive for this form (``ProviderCreate`` / ``ProviderPatch``)."""
        data: dict[str, Any] = {
            "nickname": self.nickname,
            "mobile_number": self.mobile_number,
            "request_type": self.request_type or "POST",
            "endpoint_url": self.endpoint_url or None,
            "auth": (
                {"type": "basic", "username": self.auth_username, "password": self.auth_password}
                if self.auth_type == "basic"
                else {"type": "none"}
            ),
            "headers": dict(self.headers),
            "callback_header": (
                {"name": self.callback_header_name, "value": self.callback_header_value}
                if self.callback_header_enabled
                else None
            ),
            "is_default": self.is_default,
            "auto_reply": {
                "enabled": self.auto_reply_enabled,
                "text": self.auto_reply_text or None,
            },
            "max_concurrency": self.max_concurrency,
            "options": {"batch_size": self.batch_size or "100"},
        }
        if creating:
            data["kind"] = self.kind
        elif not self.is_default:
            # Unticked on an edit means "leave it": a provider stops being the default only
            # when another one becomes it.
            del data["is_default"]
        return data


# --- workspace settings -------------------------------------------------------------------------


def _keywords(text: str) -> list[str]:
    return [word.strip() for word in text.replace("\n", ",").split(",") if word.strip()]


@dataclass
class SettingsForm:
    default_country: str = "IN"
    timezone: str = "Asia/Kolkata"
    dnd_enabled: bool = False
    dnd_start: str = "21:00"
    dnd_end: str = "09:00"
    cap_enabled: bool = False
    cap_messages: str = "1"
    cap_hours: str = "24"
    opt_out_keywords: str = ""
    opt_in_keywords: str = ""
    new_contact_subscription: str = "subscribed"
    in_doubt_policy: str = "hold"
    in_doubt_wait_minutes: str = "30"
    message_expiry_hours: str = "24"

    @classmethod
    def from_settings(cls, settings: WorkspaceSettings) -> SettingsForm:
        form = cls(
            default_country=settings.default_country,
            timezone=settings.timezone,
            opt_out_keywords=", ".join(settings.opt_out_keywords),
            opt_in_keywords=", ".join(settings.opt_in_keywords),
            new_contact_subscription=settings.new_contact_subscription,
            in_doubt_policy=settings.in_doubt_policy,
            in_doubt_wait_minutes=str(settings.in_doubt_wait_minutes),
            message_expiry_hours=str(settings.message_expiry_hours),
        )
        if settings.dnd:
            form.dnd_enabled, form.dnd_start, form.dnd_end = (
                True,
                settings.dnd.start,
                settings.dnd.end,
            )
        if settings.frequency_cap:
            form.cap_enabled = True
            form.cap_messages = str(settings.frequency_cap.messages)
            form.cap_hours = str(settings.frequency_cap.hours)
        return form

    @classmethod
    def from_request(cls, form: FormData) -> SettingsForm:
        return cls(
            default_country=text(form, "default_country"),
            timezone=text(form, "timezone"),
            dnd_enabled=checked(form, "dnd.enabled"),
            dnd_start=text(form, "dnd.start"),
            dnd_end=text(form, "dnd.end"),
            cap_enabled=checked(form, "frequency_cap.enabled"),
            cap_messages=text(form, "frequency_cap.messages"),
            cap_hours=text(form, "frequency_cap.hours"),
            opt_out_keywords=text(form, "opt_out_keywords"),
            opt_in_keywords=text(form, "opt_in_keywords"),
            new_contact_subscription=text(form, "new_contact_subscription", "subscribed"),
            in_doubt_policy=text(form, "in_doubt_policy", "hold"),
            in_doubt_wait_minutes=text(form, "in_doubt_wait_minutes"),
            message_expiry_hours=text(form, "message_expiry_hours"),
        )

    def payload(self) -> dict[str, Any]:
        """A ``WorkspaceSettingsPatch`` body that sets every field the form shows."""
        return {
            "default_country": self.default_country,
            "timezone": self.timezone,
            "dnd": {"start": self.dnd_start, "end": self.dnd_end} if self.dnd_enabled else None,
            "frequency_cap": (
                {"messages": self.cap_messages, "hours": self.cap_hours}
                if self.cap_enabled
                else None
            ),
            "opt_out_keywords": _keywords(self.opt_out_keywords),
            "opt_in_keywords": _keywords(self.opt_in_keywords),
            "new_contact_subscription": self.new_contact_subscription,
            "in_doubt_policy": self.in_doubt_policy,
            "in_doubt_wait_minutes": self.in_doubt_wait_minutes,
            "message_expiry_hours": self.message_expiry_hours,
        }


# What each field is called on its page: the error summary links to fields by these names.
FIELD_LABELS = {
    "nickname": "Nickname",
    "kind": "Provider kind",
    "mobile_number": "WhatsApp number",
    "request_type": "Request type",
    "endpoint_url": "Endpoint URL",
    "max_concurrency": "Maximum concurrent requests",
    "auth": "Authentication",
    "auth.type": "Authentication type",
    "auth.username": "Username",
    "auth.password": "Password",
    "headers": "Headers",
    "callback_header.name": "Callback header name",
    "callback_header.value": "Callback header value",
    "is_default": "Default provider",
    "auto_reply.text": "Auto-reply text",
    "options.batch_size": "Recipients per bulk request",
    "default_country": "Default country",
    "timezone": "Time zone",
    "dnd.enabled": "Do not disturb",
    "dnd.start": "Quiet from",
    "dnd.end": "Quiet until",
    "frequency_cap.enabled": "Frequency cap",
    "frequency_cap.messages": "At most (messages)",
    "frequency_cap.hours": "Per (hours)",
    "opt_out_keywords": "Opt-out keywords",
    "opt_in_keywords": "Opt-in keywords",
    "new_contact_subscription": "New numbers start",
    "in_doubt_policy": "When a message is in doubt",
    "in_doubt_wait_minutes": "Wait for a report",
    "message_expiry_hours": "Expiry",
    "label": "Label",
    "status": "Status",
    "provider_id": "Provider",
    "to": "Phone",
    "cursor": "Page",
    "name": "Name",
    "language": "Language",
    "category": "Category",
    "parameter_format": "Variables",
    "definition": "Template JSON",
    "header.format": "Header type",
    "header.text": "Header text",
    "header.example": "Header sample",
    "body.text": "Body text",
    "body.example": "Sample values",
    "footer.text": "Footer text",
    "buttons": "Buttons",
    "lto.text": "Offer title",
    "carousel": "Carousel cards",
    "numbers": "Phone numbers",
    "phone": "Phone",
    "identity": "Identity",
    "attribute": "Attribute",
    "value": "Value",
    "file": "CSV file",
    "map": "Column mapping",
    "match": "Profiles match",
    "from": "Sender",
    "type": "Type",
    "email": "Email of a new user",
    "password": "Their first password",
    "audience.kind": "Send to",
    "audience.segment_id": "Segment",
    "audience.phones": "Phone numbers",
    "audience.identities": "Identities",
    "template_id": "Template",
    "variables": "Variables",
    "variant_b.template_id": "Variant B template",
    "variant_b.percent": "Variant B share",
    "control_percent": "Control group",
    "schedule.start_at": "Start at",
    "schedule.cutoff_at": "Stop sending at",
    "throttle_per_second": "Messages per second",
    "target_cap": "Send to at most",
    "goal.event": "Goal event",
    "goal.hours": "Goal window",
}


def field_id(name: str) -> str:
    """The HTML id of a form field (error summaries link to it)."""
    return "f-" + name.replace(".", "-").replace("_", "-")
