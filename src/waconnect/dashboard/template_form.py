"""The template editor's form: WhatsApp's definition as fields a marketer fills in, and back.

Basic templates (header, body, footer, buttons) and a limited-time offer are plain fields; the
carousel's cards are typed as WhatsApp's JSON, and any template (authentication included) can
be edited whole as JSON. Errors from ``templates.validation`` name parts of the template
(``body.example``, ``buttons.2.url``): ``form_field`` moves each to the field that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.datastructures import FormData

from waconnect.dashboard.forms import Errors, checked, raw, rows, text
from waconnect.templates.render import placeholders
from waconnect.templates.schemas import OWN_FIELDS
from waconnect.templates.validation import normalized

HEADER_FORMATS = ["", "TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION"]
BUTTON_TYPES = ["QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE"]
EMPTY_BUTTON = ("QUICK_REPLY", "", "", "")


@dataclass
class TemplateForm:
    """What the editor shows, as strings; ``mode`` is ``form`` or ``json``."""

    provider_id: str = ""
    mode: str = "form"
    name: str = ""
    language: str = "en"
    category: str = "MARKETING"
    status: str = "APPROVED"
    parameter_format: str = "positional"
    header_format: str = ""
    header_text: str = ""
    header_example: str = ""
    body_text: str = ""
    body_examples: str = ""
    footer_text: str = ""
    # (type, label, value: URL / phone / code, example for a URL variable)
    buttons: list[tuple[str, str, str, str]] = field(default_factory=list)
    lto_enabled: bool = False
    lto_text: str = ""
    lto_has_expiration: bool = True
    carousel: str = ""
    definition_json: str = ""

    # --- from the browser ---------------------------------------------------------------------

    @classmethod
    def from_request(cls, form: FormData) -> TemplateForm:
        buttons = [
            (kind, label.strip(), value.strip(), example.strip())
            for kind, label, value, example in rows(
                form, "buttons", ("type", "text", "value", "example")
            )
            if label.strip() or value.strip() or example.strip()
        ]
        return cls(
            provider_id=text(form, "provider_id"),
            mode="json" if text(form, "mode") == "json" else "form",
            name=text(form, "name"),
            language=text(form, "language"),
            category=text(form, "category"),
            status=text(form, "status", "APPROVED"),
            parameter_format=text(form, "parameter_format", "positional"),
            header_format=text(form, "header.format"),
            header_text=raw(form, "header.text"),
            header_example=text(form, "header.example"),
            body_text=raw(form, "body.text"),
            body_examples=raw(form, "body.example"),
            footer_text=raw(form, "footer.text"),
            buttons=buttons,
            lto_enabled=checked(form, "lto.enabled"),
            lto_text=text(form, "lto.text"),
            lto_has_expiration=checked(form, "lto.has_expiration"),
            carousel=raw(form, "carousel").strip(),
            definition_json=raw(form, "definition").strip(),
        )

    # --- from a stored template ---------------------------------------------------------------

    @classmethod
    def from_definition(cls, data: dict[str, Any], provider_id: int) -> TemplateForm:
        """The form of a stored template; what the fields cannot hold opens it as JSON."""
        form = cls(
            provider_id=str(provider_id),
            name=str(data.get("name", "")),
            language=str(data.get("language", "")),
            category=str(data.get("category", "")),
            status=str(data.get("status", "APPROVED")),
            parameter_format=str(data.get("parameter_format") or "positional"),
        )
        form.definition_json = _json(_definition_only(data))
        if not form._fill_fields(normalized(data).get("components") or []):
            form.mode = "json"
        return form

    def _fill_fields(self, components: list[dict[str, Any]]) -> bool:
        """Fill the plain fields from ``components``; False when they cannot show them all."""
        named = self.parameter_format == "named"
        for part in components:
            kind = str(part.get("type", "")).upper()
            if kind == "HEADER":
                self.header_format = str(part.get("format") or "TEXT")
                self.header_text = str(part.get("text") or "")
                self.header_example = _header_example(part.get("example"), named)
            elif kind == "BODY":
                self.body_text = str(part.get("text") or "")
                self.body_examples = _body_examples(part.get("example"), named)
            elif kind == "FOOTER":
                self.footer_text = str(part.get("text") or "")
            elif kind == "BUTTONS":
                rows = [_button_row(button) for button in part.get("buttons") or []]
                if any(row is None for row in rows):
                    return False
                self.buttons = [row for row in rows if row is not None]
            elif kind == "LIMITED_TIME_OFFER":
                inner = part.get("limited_time_offer") or part
                self.lto_enabled = True
                self.lto_text = str(inner.get("text") or "")
                self.lto_has_expiration = bool(inner.get("has_expiration", False))
            elif kind == "CAROUSEL":
                self.carousel = _json(part.get("cards") or [])
            else:
                return False
        return True

    # --- to WhatsApp's definition -------------------------------------------------------------

    def definition(self) -> tuple[dict[str, Any], Errors]:
        """The template as the API takes it, and what cannot even be read (bad JSON)."""
        if self.mode == "json":
            return self._from_json()
        errors: Errors = {}
        components: list[dict[str, Any]] = []
        if self.header_format:
            components.append(self._header())
        components.append(self._body())
        if self.footer_text.strip() and not self.lto_enabled:
            components.append({"type": "FOOTER", "text": self.footer_text})
        if self.lto_enabled:
            components.append(
                {
                    "type": "LIMITED_TIME_OFFER",
                    "limited_time_offer": {
                        "text": self.lto_text,
                        "has_expiration": self.lto_has_expiration,
                    },
                }
            )
        if self.buttons:
            components.append({"type": "BUTTONS", "buttons": [_button(*b) for b in self.buttons]})
        if self.carousel:
            try:
                cards = orjson.loads(self.carousel)
            except orjson.JSONDecodeError as exc:
                errors["carousel"] = f"not valid JSON: {exc}"
            else:
                components.append({"type": "CAROUSEL", "cards": cards})
        return self._top(components), errors

    def _top(self, components: list[dict[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "status": self.status,
            "components": components,
        }
        if self.parameter_format == "named":
            data["parameter_format"] = "named"
        return data

    def _from_json(self) -> tuple[dict[str, Any], Errors]:
        try:
            parsed = orjson.loads(self.definition_json or "{}")
        except orjson.JSONDecodeError as exc:
            return self._top([]), {"definition": f"not valid JSON: {exc}"}
        if not isinstance(parsed, dict):
            return self._top([]), {"definition": "a template is a JSON object {name, components…}"}
        # The fields above the JSON win for what they show: one place to change the name.
        merged = {**parsed, **{k: v for k, v in self._top([]).items() if k != "components"}}
        merged.setdefault("components", [])
        return merged, {}

    def _header(self) -> dict[str, Any]:
        fmt = self.header_format
        header: dict[str, Any] = {"type": "HEADER", "format": fmt}
        if fmt == "TEXT":
            header["text"] = self.header_text
            names = placeholders(self.header_text)
            if names and self.header_example:
                header["example"] = self._examples("header_text", names, [self.header_example])
        elif fmt != "LOCATION" and self.header_example:
            header["example"] = {"header_handle": [self.header_example]}
        return header

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "BODY", "text": self.body_text}
        names = placeholders(self.body_text)
        lines = [line.strip() for line in self.body_examples.splitlines() if line.strip()]
        if names and lines:
            body["example"] = self._examples("body_text", names, lines)
        return body

    def _examples(self, key: str, names: list[str], lines: list[str]) -> dict[str, Any]:
        if self.parameter_format != "named":
            values = [line.partition("=")[2].strip() if "=" in line else line for line in lines]
            return {key: [values] if key == "body_text" else values}
        given = dict(_pair(line) for line in lines)
        params = [{"param_name": n, "example": given[n]} for n in names if given.get(n)]
        return {f"{key}_named_params": params}


def _pair(line: str) -> tuple[str, str]:
    name, _, value = line.partition("=") if "=" in line else line.partition(":")
    return name.strip(), value.strip()


def _button(kind: str, label: str, value: str, example: str) -> dict[str, Any]:
    button: dict[str, Any] = {"type": kind}
    if kind in ("QUICK_REPLY", "URL", "PHONE_NUMBER"):
        button["text"] = label
    if kind == "URL":
        button["url"] = value
        if example:
            button["example"] = [example]
    elif kind == "PHONE_NUMBER":
        button["phone_number"] = value
    elif kind == "COPY_CODE":
        button["example"] = value
    return button


def _button_row(button: dict[str, Any]) -> tuple[str, str, str, str] | None:
    kind = str(button.get("type", "")).upper()
    if kind not in BUTTON_TYPES:
        return None
    example = button.get("example")
    if isinstance(example, list):
        example = example[0] if example else ""
    value = {"URL": button.get("url"), "PHONE_NUMBER": button.get("phone_number")}.get(kind)
    if kind == "COPY_CODE":
        return kind, "", str(example or ""), ""
    return kind, str(button.get("text") or ""), str(value or ""), str(example or "")


def _header_example(example: Any, named: bool) -> str:
    example = example if isinstance(example, dict) else {}
    if named:
        params = example.get("header_text_named_params") or []
        return "\n".join(f"{p.get('param_name')}={p.get('example')}" for p in params)
    for key in ("header_text", "header_handle"):
        values = example.get(key)
        if isinstance(values, list) and values:
            return str(values[0])
    return ""


def _body_examples(example: Any, named: bool) -> str:
    example = example if isinstance(example, dict) else {}
    if named:
        params = example.get("body_text_named_params") or []
        return "\n".join(f"{p.get('param_name')}={p.get('example')}" for p in params)
    values = example.get("body_text") or []
    if values and isinstance(values[0], list):
        values = values[0]
    return "\n".join(str(v) for v in values)


def _definition_only(data: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "language", "category", "parameter_format", "components")
    extra = {k: v for k, v in data.items() if k not in OWN_FIELDS and k in keep}
    return extra


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


# --- where an error is shown --------------------------------------------------------------------

_TOP = {"name", "language", "category", "status", "parameter_format", "provider_id"}


def form_field(path: str, mode: str) -> str:
    """The form field that shows the validation error at ``path``."""
    head, _, rest = path.partition(".")
    if head in _TOP:
        return head
    if mode == "json":
        return "definition"
    if head == "header":
        return (
            "header.example"
            if rest.startswith("example")
            else ("header.format" if rest == "format" else "header.text")
        )
    if head == "body":
        return "body.example" if rest.startswith("example") else "body.text"
    if head == "footer":
        return "footer.text"
    if head == "buttons":
        index = rest.split(".")[0]
        return f"buttons.{index}" if index.isdigit() else "buttons"
    if head == "limited_time_offer":
        return "lto.text"
    if head == "carousel":
        return "carousel"
    return "form"


def field_errors(violations: dict[str, str], mode: str) -> Errors:
    """Violations keyed by form field; several at one field are joined, each with its part."""
    errors: Errors = {}
    for path, why in violations.items():
        name = form_field(path, mode)
        shown = why if name == path or name in _TOP else f"{path}: {why}"
        errors[name] = f"{errors[name]}; {shown}" if name in errors else shown
    return errors
