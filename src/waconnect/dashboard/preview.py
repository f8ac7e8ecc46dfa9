"""The preview bubble: a template definition as the customer's WhatsApp shows it.

Drawn on the server from the definition alone (the editor's current fields, or a stored
template): variables take the template's own sample values, and a variable without one stays
visible as ``{{1}}`` so the gap shows. It never raises: a half-typed template still previews.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from waconnect.templates.render import RenderError, placeholders, render_text
from waconnect.templates.validation import normalized, template_type

_BUTTON_ICONS = {
    "URL": "↗",
    "PHONE_NUMBER": "✆",
    "COPY_CODE": "⧉",
    "QUICK_REPLY": "↩",
    "OTP": "⧉",
    "FLOW": "☰",
    "CATALOG": "☰",
}


@dataclass
class Button:
    kind: str
    label: str
    target: str = ""

    @property
    def icon(self) -> str:
        return _BUTTON_ICONS.get(self.kind, "•")


@dataclass
class Card:
    media: str
    body: str
    buttons: list[Button] = field(default_factory=list)


@dataclass
class Bubble:
    kind: str
    header_media: str = ""  # IMAGE, VIDEO, DOCUMENT, LOCATION: a placeholder of that kind
    header_text: str = ""
    offer_text: str = ""
    offer_expires: bool = False
    body: str = ""
    footer: str = ""
    buttons: list[Button] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)


class _Samples(dict[str, str]):
    """Sample values by variable name; a variable without one shows as itself."""

    def get(self, key: str, default: Any = None) -> str:  # type: ignore[override]
        return super().get(key) or "{{" + key + "}}"


def _samples(text: str, example: Any, key: str) -> _Samples:
    names = placeholders(text)
    example = example if isinstance(example, Mapping) else {}
    samples = _Samples()
    named = example.get(f"{key}_named_params")
    if isinstance(named, list):
        for param in named:
            if isinstance(param, Mapping):
                samples[str(param.get("param_name"))] = str(param.get("example") or "")
        return samples
    values = example.get(key)
    if isinstance(values, list) and values and isinstance(values[0], list):
        values = values[0]
    if isinstance(values, list):
        for position, value in enumerate(values):
            if position < len(names):
                samples[names[position]] = str(value)
    return samples


def _filled(part: Mapping[str, Any] | None, key: str) -> str:
    if not part or not isinstance(part.get("text"), str):
        return ""
    text = part["text"]
    try:
        return render_text(text, _samples(text, part.get("example"), key))
    except RenderError:  # cannot happen with _Samples; a preview never fails
        return text


def _part(components: Any, kind: str) -> Mapping[str, Any] | None:
    for component in components if isinstance(components, list) else []:
        if isinstance(component, Mapping) and str(component.get("type", "")).upper() == kind:
            return component
    return None


def _buttons(part: Mapping[str, Any] | None) -> list[Button]:
    found: list[Button] = []
    for button in (part or {}).get("buttons") or []:
        if not isinstance(button, Mapping):
            continue
        kind = str(button.get("type", "")).upper()
        label = str(button.get("text") or "")
        if kind == "COPY_CODE":
            label = "Copy offer code"
        elif kind == "OTP":
            label = label or "Copy code"
        example = button.get("example")
        sample = example[0] if isinstance(example, list) and example else example
        target = str(button.get("url") or button.get("phone_number") or "")
        if "{{" in target and sample:
            target = render_text(target, _Samples({"1": str(sample)}))
        found.append(Button(kind=kind, label=label or kind.lower(), target=target))
    return found


def _cards(part: Mapping[str, Any] | None) -> list[Card]:
    cards: list[Card] = []
    for card in (part or {}).get("cards") or []:
        components = card.get("components") if isinstance(card, Mapping) else None
        header = _part(components, "HEADER") or {}
        cards.append(
            Card(
                media=str(header.get("format") or "IMAGE").upper(),
                body=_filled(_part(components, "BODY"), "body_text"),
                buttons=_buttons(_part(components, "BUTTONS")),
            )
        )
    return cards


def bubble(definition: Mapping[str, Any]) -> Bubble:
    """The bubble of ``definition`` (WhatsApp's template format, any case)."""
    data = normalized(definition) if isinstance(definition, Mapping) else {}
    components = data.get("components")
    try:
        kind = template_type(data)
    except Exception:  # a half-typed template has no type yet
        kind = "basic"
    result = Bubble(kind=kind)
    header = _part(components, "HEADER")
    if header is not None:
        fmt = str(header.get("format") or "TEXT").upper()
        if fmt == "TEXT":
            result.header_text = _filled(header, "header_text")
        else:
            result.header_media = fmt
    offer = _part(components, "LIMITED_TIME_OFFER")
    if offer is not None:
        inner = offer.get("limited_time_offer") or offer
        result.offer_text = str(inner.get("text") or "")
        result.offer_expires = bool(inner.get("has_expiration", False))
    if kind == "authentication":
        result.body = "{{1}} is your verification code."
    else:
        result.body = _filled(_part(components, "BODY"), "body_text")
    result.footer = _filled(_part(components, "FOOTER"), "footer")
    result.buttons = _buttons(_part(components, "BUTTONS"))
    result.cards = _cards(_part(components, "CAROUSEL"))
    return result


def variables(definition: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The personalization keys a send fills (``header.1``, ``body.first_name``), each with its
    sample value, in the order the customer reads them."""
    found: list[tuple[str, str]] = []
    components = definition.get("components")
    for kind, key, example_key in (
        ("HEADER", "header", "header_text"),
        ("BODY", "body", "body_text"),
    ):
        part = _part(components, kind)
        if part is None or not isinstance(part.get("text"), str):
            continue
        samples = _samples(part["text"], part.get("example"), example_key)
        found.extend(
            (f"{key}.{name}", dict.get(samples, name) or "") for name in placeholders(part["text"])
        )
    return found
