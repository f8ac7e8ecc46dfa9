"""Small builders of WhatsApp-format templates for the template tests (plain data)."""

from __future__ import annotations

from typing import Any

Component = dict[str, Any]


def body(text: str = "Hi {{1}}, your order is ready.", *values: str) -> Component:
    component: Component = {"type": "BODY", "text": text}
    if values:
        component["example"] = {"body_text": [list(values)]}
    elif "{{1}}" in text:
        component["example"] = {"body_text": [["Asha"]]}
    return component


def header_text(text: str = "Your order", *values: str) -> Component:
    component: Component = {"type": "HEADER", "format": "TEXT", "text": text}
    if values:
        component["example"] = {"header_text": list(values)}
    return component


def header(fmt: str) -> Component:
    return {"type": "HEADER", "format": fmt}


def footer(text: str = "Reply STOP to opt out") -> Component:
    return {"type": "FOOTER", "text": text}


def buttons(*items: dict[str, Any]) -> Component:
    return {"type": "BUTTONS", "buttons": list(items)}


def quick_reply(text: str = "Yes") -> dict[str, Any]:
    return {"type": "QUICK_REPLY", "text": text}


def url_button(
    url: str = "https://shop.example.org/o/{{1}}", example: Any = "A-1"
) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "URL", "text": "Track", "url": url}
    if example is not None:
        button["example"] = [example] if isinstance(example, str) else example
    return button


def phone_button(number: str = "+918000000001") -> dict[str, Any]:
    return {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": number}


def copy_code(example: str | None = "SAVE20") -> dict[str, Any]:
    button: dict[str, Any] = {"type": "COPY_CODE"}
    if example is not None:
        button["example"] = example
    return button


def template(*components: Component, **top: Any) -> dict[str, Any]:
    """A valid UTILITY template in English; a default body is added when none is given."""
    parts = list(components)
    kinds = [str(part.get("type")).upper() for part in parts]
    if "BODY" not in kinds:
        parts.insert(1 if kinds and kinds[0] == "HEADER" else 0, body())
    data: dict[str, Any] = {
        "name": "order_update",
        "language": "en",
        "category": "UTILITY",
        "components": parts,
    }
    data.update(top)
    return data


def offer(text: str = "Ends soon!", **extra: Any) -> Component:
    return {
        "type": "LIMITED_TIME_OFFER",
        "limited_time_offer": {"text": text, "has_expiration": True, **extra},
    }


def offer_template(*components: Component, **top: Any) -> dict[str, Any]:
    """A valid limited-time offer; ``components`` replace the defaults of their type."""
    defaults = {
        "HEADER": header("IMAGE"),
        "BODY": body("Hi {{1}}, 20% off everything.", "Asha"),
        "LIMITED_TIME_OFFER": offer(),
        "BUTTONS": buttons(copy_code(), url_button()),
    }
    for component in components:
        defaults[component["type"]] = component
    return {
        "name": "flash_sale",
        "language": "en_US",
        "category": "MARKETING",
        "components": [c for c in defaults.values() if c is not None],
        **top,
    }


def card(
    fmt: str = "IMAGE",
    text: str | None = "Fresh picks for you.",
    card_buttons: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    components: list[Component] = [header(fmt)]
    if text is not None:
        components.append(body(text))
    chosen = [quick_reply("More like this")] if card_buttons is None else card_buttons
    if chosen:
        components.append(buttons(*chosen))
    return {"components": components}


def carousel_template(cards: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    chosen = [card(), card()] if cards is None else cards
    data: dict[str, Any] = {
        "name": "summer_carousel",
        "language": "en",
        "category": "MARKETING",
        "components": [
            body("Summer is here, {{1}}!", "Asha"),
            {"type": "CAROUSEL", "cards": chosen},
        ],
    }
    data.update(top)
    return data


def otp(otp_type: str = "COPY_CODE", **extra: Any) -> dict[str, Any]:
    return {"type": "OTP", "otp_type": otp_type, "text": "Copy code", **extra}


def app(package: str = "com.example.shop", signature: str = "K8a/AINcGX7") -> dict[str, str]:
    return {"package_name": package, "signature_hash": signature}


def auth_template(*components: Component, **top: Any) -> dict[str, Any]:
    """A valid authentication template; ``components`` replace the defaults of their type."""
    defaults: dict[str, Component] = {
        "BODY": {"type": "BODY", "add_security_recommendation": True},
        "FOOTER": {"type": "FOOTER", "code_expiration_minutes": 10},
        "BUTTONS": buttons(otp()),
    }
    for component in components:
        defaults[component["type"]] = component
    return {
        "name": "login_code",
        "language": "en",
        "category": "AUTHENTICATION",
        "components": list(defaults.values()),
        **top,
    }
