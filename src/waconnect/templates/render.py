"""Filling template variables.

A stored template is kept in WhatsApp's own definition format (``components`` of ``HEADER``,
``BODY``, ``FOOTER``, ``BUTTONS``, ``LIMITED_TIME_OFFER``, ``CAROUSEL``); the values for one send
are kept in WhatsApp's own send format (``[{"type": "body", "parameters": [...]}, ...]``). This
module joins the two: the text a customer will read, for providers that want rendered text (the
generic contract), for previews and for the test-send screen.

It is on the dispatcher's hot path, so it works on plain dicts and one precompiled regex.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RenderError",
    "RenderedCard",
    "RenderedTemplate",
    "component_of",
    "parameter_value",
    "placeholders",
    "render_template",
    "render_text",
    "send_component",
    "send_values",
]

# Positional ``{{1}}`` or named ``{{first_name}}``; WhatsApp writes no spaces inside the braces,
# but hand-typed templates sometimes have them and they mean the same variable.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

Values = Sequence[str] | Mapping[str, str]


class RenderError(ValueError):
    """A value needed to fill a template is missing; the message names component and variable."""

    def __init__(self, component: str, variable: str, detail: str | None = None) -> None:
        self.component = component
        self.variable = variable
        message = detail or f"no value for {{{{{variable}}}}}"
        super().__init__(f"{component}: {message}")


def placeholders(text: str) -> list[str]:
    """Variable names in ``text`` in order of first appearance, without duplicates."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def render_text(text: str, values: Values, component: str = "text") -> str:
    """Replace ``{{1}}``/``{{name}}`` in ``text``.

    A sequence fills positional variables (``{{1}}`` is ``values[0]``); a mapping fills named
    ones and also positional ones keyed ``"1"``, ``"2"``. Extra values are ignored (WhatsApp
    itself rejects a count mismatch at send time; we only need what the text uses).
    Raises :class:`RenderError` naming ``component`` and the variable when one is missing.
    """
    if "{{" not in text:  # the common static footer/header: skip the regex
        return text

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if isinstance(values, Mapping):
            value = values.get(name)
        elif name.isdigit() and 0 < int(name) <= len(values):
            value = values[int(name) - 1]
        else:
            value = None
        if value is None:
            raise RenderError(component, name)
        return value

    return _PLACEHOLDER.sub(fill, text)


def parameter_value(parameter: Mapping[str, Any]) -> str:
    """The text a WhatsApp send parameter stands for.

    ``currency`` and ``date_time`` parameters carry a ``fallback_value``, which is what WhatsApp
    shows when it cannot localize, so it is the honest plain-text rendering.
    """
    kind = parameter.get("type", "text")
    if kind == "text":
        return str(parameter.get("text", ""))
    if kind in ("currency", "date_time"):
        inner = parameter.get(kind) or {}
        return str(inner.get("fallback_value", ""))
    if kind == "coupon_code":
        return str(parameter.get("coupon_code", ""))
    if kind == "payload":
        return str(parameter.get("payload", ""))
    inner = parameter.get(kind)
    if isinstance(inner, Mapping):
        return str(inner.get("link") or inner.get("id") or "")
    return str(inner if inner is not None else "")


def send_values(parameters: Sequence[Mapping[str, Any]]) -> Values:
    """Values of one send component: a dict when the params are named, else a list in order."""
    if parameters and "parameter_name" in parameters[0]:
        return {str(p["parameter_name"]): parameter_value(p) for p in parameters}
    return [parameter_value(p) for p in parameters]


def component_of(template: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The stored template's component of ``kind`` (``HEADER``, ``BODY``...), any case."""
    return _component_in(template.get("components") or (), kind)


def _component_in(components: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    wanted = kind.upper()
    for component in components:
        if str(component.get("type", "")).upper() == wanted:
            return component
    return None


def send_component(
    components: Sequence[Mapping[str, Any]], kind: str, index: int | None = None
) -> Mapping[str, Any] | None:
    """The send component of ``kind`` (``header``, ``body``, ``button``...), any case.

    For buttons pass ``index`` (0-based position of the button in the template): WhatsApp
    writes it as a string ``"0"`` but integers are accepted too.
    """
    wanted = kind.lower()
    for component in components:
        if str(component.get("type", "")).lower() != wanted:
            continue
        if index is None or _as_index(component.get("index")) == index:
            return component
    return None


def _as_index(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _render_component(
    stored: Mapping[str, Any] | None,
    sent: Mapping[str, Any] | None,
    name: str,
) -> str | None:
    if stored is None:
        return None
    text = stored.get("text")
    if not isinstance(text, str):
        return None
    parameters = (sent or {}).get("parameters") or ()
    return render_text(text, send_values(parameters), name)


@dataclass(frozen=True, slots=True)
class RenderedCard:
    """One carousel card: its rendered body and its URL buttons by 0-based index."""

    body_text: str | None
    button_urls: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedTemplate:
    """What a customer reads, assembled from a stored template and one send's components.

    ``header_text`` is set for TEXT headers only; ``button_urls`` maps the 0-based button index
    to the full URL (dynamic URLs filled in); ``preview`` is a plain-text rendering for people.
    """

    header_text: str | None
    body_text: str
    footer_text: str | None
    button_urls: Mapping[int, str]
    cards: tuple[RenderedCard, ...]
    preview: str


def _button_urls(
    buttons: Sequence[Mapping[str, Any]],
    sent: Sequence[Mapping[str, Any]],
    component: str,
) -> dict[int, str]:
    urls: dict[int, str] = {}
    for index, button in enumerate(buttons):
        if str(button.get("type", "")).upper() != "URL":
            continue
        url = str(button.get("url", ""))
        if "{{" in url:
            param = send_component(sent, "button", index)
            values = send_values((param or {}).get("parameters") or ())
            url = render_text(url, values, f"{component} {index}")
        urls[index] = url
    return urls


def _render_cards(
    stored: Mapping[str, Any] | None, sent: Mapping[str, Any] | None
) -> tuple[RenderedCard, ...]:
    if stored is None:
        return ()
    sent_cards = {
        _as_index(card.get("card_index")): card.get("components") or ()
        for card in (sent or {}).get("cards") or ()
    }
    cards: list[RenderedCard] = []
    for k, card in enumerate(stored.get("cards") or ()):
        stored_components = card.get("components") or ()
        sent_components = sent_cards.get(k, ())
        body = _render_component(
            _component_in(stored_components, "BODY"),
            send_component(sent_components, "body"),
            f"carousel card {k} body",
        )
        buttons_component = _component_in(stored_components, "BUTTONS") or {}
        urls = _button_urls(
            buttons_component.get("buttons") or (), sent_components, f"carousel card {k} button"
        )
        cards.append(RenderedCard(body_text=body, button_urls=urls))
    return tuple(cards)


def render_template(
    template: Mapping[str, Any], components: Sequence[Mapping[str, Any]]
) -> RenderedTemplate:
    """Render a stored template with one send's WhatsApp components.

    Raises :class:`RenderError` when a variable used by the template has no value.
    """
    header = component_of(template, "HEADER")
    header_text = None
    if header is not None and str(header.get("format", "TEXT")).upper() == "TEXT":
        header_text = _render_component(header, send_component(components, "header"), "header")
    body_text = (
        _render_component(
            component_of(template, "BODY"), send_component(components, "body"), "body"
        )
        or ""
    )
    footer = component_of(template, "FOOTER")
    footer_text = str(footer["text"]) if footer and footer.get("text") else None
    buttons = (component_of(template, "BUTTONS") or {}).get("buttons") or ()
    button_urls = _button_urls(buttons, components, "button")
    cards = _render_cards(
        component_of(template, "CAROUSEL"), send_component(components, "carousel")
    )
    preview = _preview(template, header, header_text, body_text, footer_text, buttons, button_urls)
    if cards:
        preview += "".join(
            f"\n--- card {k + 1} ---\n{card.body_text or ''}" for k, card in enumerate(cards)
        )
    return RenderedTemplate(header_text, body_text, footer_text, button_urls, cards, preview)


def _preview(
    template: Mapping[str, Any],
    header: Mapping[str, Any] | None,
    header_text: str | None,
    body_text: str,
    footer_text: str | None,
    buttons: Sequence[Mapping[str, Any]],
    button_urls: Mapping[int, str],
) -> str:
    lines: list[str] = []
    if header_text:
        lines.append(f"*{header_text}*")
    elif header is not None:
        lines.append(f"[{str(header.get('format', 'media')).lower()}]")
    offer = component_of(template, "LIMITED_TIME_OFFER")
    if offer is not None:
        inner = offer.get("limited_time_offer") or offer
        lines.append(f"[offer: {inner.get('text', '')}]")
    lines.append(body_text)
    if footer_text:
        lines.append(f"_{footer_text}_")
    for index, button in enumerate(buttons):
        label = button.get("text", "")
        target = button_urls.get(index) or button.get("phone_number")
        lines.append(f"[{label}: {target}]" if target else f"[{label}]")
    return "\n".join(lines)
