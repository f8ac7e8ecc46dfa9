"""The campaign wizard's form: its steps as fields, and the ``CampaignIn`` body they make.

Variables are typed one per line, ``body.1 = attribute:first_name | there`` (a profile
attribute, with a default) or ``body.2 = Diwali`` (the same text for everyone). Times are the
workspace's local time, as a marketer reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from waconnect.dashboard.forms import Errors, checked, raw, text

AUDIENCES = [
    ("segment", "A saved segment"),
    ("phones", "Phone numbers"),
    ("identities", "Identities"),
]
DND_CHOICES = [
    ("workspace", "The workspace's quiet hours"),
    ("custom", "Other quiet hours for this campaign"),
    ("ignore", "Send even during quiet hours"),
]


def parse_variables(lines: str) -> tuple[dict[str, Any], Errors]:
    """``KEY = attribute:NAME | DEFAULT`` or ``KEY = TEXT`` per line -> a personalization map."""
    mapping: dict[str, Any] = {}
    for number, line in enumerate(lines.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition("=")
        if not sep or not key.strip():
            return {}, {"variables": f"line {number}: write KEY = VALUE, e.g. body.1 = Diwali"}
        source, _, default = rest.partition("|")
        source = source.strip()
        entry: dict[str, Any] = (
            {"attribute": source.removeprefix("attribute:").strip()}
            if source.startswith("attribute:")
            else {"literal": source}
        )
        if default.strip():
            entry["default"] = default.strip()
        mapping[key.strip()] = entry
    return mapping, {}


def _local(value: str, tz: ZoneInfo) -> str | None:
    """A ``datetime-local`` value in the workspace's zone as an ISO time with its offset."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=tz).isoformat()
    except ValueError:
        return value  # the schema names what is wrong


def _number(value: str) -> str | None:
    return value or None


@dataclass
class CampaignForm:
    name: str = ""
    audience_kind: str = "segment"
    segment_id: str = ""
    phones: str = ""
    identities: str = ""
    provider_id: str = ""
    template_id: str = ""
    variables: str = ""
    variant_b_template_id: str = ""
    variant_b_percent: str = "50"
    control_percent: str = "0"
    start_at: str = ""
    cutoff_at: str = ""
    throttle_per_second: str = ""
    target_cap: str = ""
    dnd: str = "workspace"
    dnd_start: str = "21:00"
    dnd_end: str = "09:00"
    goal_enabled: bool = False
    goal_event: str = ""
    goal_hours: str = "72"

    @classmethod
    def from_request(cls, form: FormData) -> CampaignForm:
        return cls(
            name=text(form, "name"),
            audience_kind=text(form, "audience.kind", "segment"),
            segment_id=text(form, "audience.segment_id"),
            phones=raw(form, "audience.phones"),
            identities=raw(form, "audience.identities"),
            provider_id=text(form, "provider_id"),
            template_id=text(form, "template_id"),
            variables=raw(form, "variables"),
            variant_b_template_id=text(form, "variant_b.template_id"),
            variant_b_percent=text(form, "variant_b.percent", "50"),
            control_percent=text(form, "control_percent", "0"),
            start_at=text(form, "schedule.start_at"),
            cutoff_at=text(form, "schedule.cutoff_at"),
            throttle_per_second=text(form, "throttle_per_second"),
            target_cap=text(form, "target_cap"),
            dnd=text(form, "dnd.choice", "workspace"),
            dnd_start=text(form, "dnd.start", "21:00"),
            dnd_end=text(form, "dnd.end", "09:00"),
            goal_enabled=checked(form, "goal.enabled"),
            goal_event=text(form, "goal.event"),
            goal_hours=text(form, "goal.hours", "72"),
        )

    def _audience(self) -> dict[str, Any]:
        if self.audience_kind == "phones":
            return {"phones": _items(self.phones)}
        if self.audience_kind == "identities":
            return {"identities": _items(self.identities)}
        return {"segment_id": self.segment_id or None}

    def _templates(self, variables: dict[str, Any]) -> dict[str, Any]:
        if not self.variant_b_template_id:
            return {"template_id": self.template_id or None, "variables": variables}
        try:
            b_share = float(self.variant_b_percent)
        except ValueError:
            b_share = -1.0
        return {
            "variants": [
                {
                    "name": "A",
                    "template_id": self.template_id or None,
                    "variables": variables,
                    "percent": 100 - b_share,
                },
                {
                    "name": "B",
                    "template_id": self.variant_b_template_id,
                    "variables": variables,
                    "percent": self.variant_b_percent,
                },
            ]
        }

    def payload(self, tz: ZoneInfo) -> tuple[dict[str, Any], Errors]:
        """A ``CampaignIn`` body, and what cannot be read at all."""
        variables, errors = parse_variables(self.variables)
        body: dict[str, Any] = {
            "name": self.name,
            "provider_id": self.provider_id or None,
            "audience": self._audience(),
            "control_percent": self.control_percent or "0",
            "schedule": {
                "start_at": _local(self.start_at, tz),
                "cutoff_at": _local(self.cutoff_at, tz),
            },
            "throttle_per_second": _number(self.throttle_per_second),
            "target_cap": _number(self.target_cap),
            "ignore_dnd": self.dnd == "ignore",
            **self._templates(variables),
        }
        if self.dnd == "custom":
            body["dnd"] = {"start": self.dnd_start, "end": self.dnd_end}
        if self.goal_enabled:
            hours = self.goal_hours
            minutes = str(round(float(hours) * 60)) if _is_number(hours) else hours
            body["goal"] = {"event": self.goal_event, "window_minutes": minutes}
        return body, errors


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _items(lines: str) -> list[str]:
    return [item.strip() for item in lines.replace(",", "\n").splitlines() if item.strip()]


# The API's field paths -> the wizard's fields.
_FIELDS = {
    "audience": "audience.kind",
    "audience.segment_id": "audience.segment_id",
    "audience.phones": "audience.phones",
    "audience.identities": "audience.identities",
    "schedule": "schedule.cutoff_at",
    "goal.window_minutes": "goal.hours",
    "variants": "variant_b.percent",
    "dnd": "dnd.start",
}


def campaign_field(path: str) -> str:
    if path in _FIELDS:
        return _FIELDS[path]
    head = path.split(".")[0]
    if path.startswith("variants.1.template_id"):
        return "variant_b.template_id"
    if path.startswith(("variants", "template_id")) and path.endswith("template_id"):
        return "template_id"
    if path.endswith("variables") or ".variables" in path or head == "variables":
        return "variables"
    if head in ("schedule", "dnd", "goal") and "." in path:
        return path
    if head == "audience":
        return "audience.kind"
    return path if head in _TOP else "form"


_TOP = {
    "name",
    "provider_id",
    "template_id",
    "control_percent",
    "throttle_per_second",
    "target_cap",
    "variables",
}
