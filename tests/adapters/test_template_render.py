from __future__ import annotations

from typing import Any

import pytest

from tests.adapters.samples import carousel_components, carousel_template
from waconnect.templates.render import (
    RenderError,
    parameter_value,
    placeholders,
    render_template,
    render_text,
)


def test_positional_and_named() -> None:
    assert render_text("Hi {{1}}, {{2}} off", ["Asha", "20%"]) == "Hi Asha, 20% off"
    assert render_text("Hi {{first_name}}", {"first_name": "Asha"}) == "Hi Asha"
    assert render_text("Hi {{ 1 }}", {"1": "Asha"}) == "Hi Asha"
    assert render_text("no variables", []) == "no variables"
    assert render_text("{{1}} and {{1}}", ["x"]) == "x and x"


def test_missing_value_names_component_and_variable() -> None:
    with pytest.raises(RenderError, match=r"body: no value for \{\{2\}\}") as info:
        render_text("Hi {{1}}, {{2}}", ["Asha"], "body")
    assert info.value.component == "body"
    assert info.value.variable == "2"
    assert isinstance(info.value, ValueError)
    with pytest.raises(RenderError, match=r"header: no value for \{\{name\}\}"):
        render_text("{{name}}", {}, "header")


def test_placeholders_in_order_without_duplicates() -> None:
    assert placeholders("{{2}} {{1}} {{2}} {{first_name}}") == ["2", "1", "first_name"]
    assert placeholders("none") == []


def test_parameter_values() -> None:
    assert parameter_value({"type": "text", "text": "a"}) == "a"
    currency = {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}
    assert parameter_value({"type": "currency", "currency": currency}) == "$100.99"
    date_time = {"type": "date_time", "date_time": {"fallback_value": "Feb 25"}}
    assert parameter_value(date_time) == "Feb 25"
    assert parameter_value({"type": "coupon_code", "coupon_code": "X1"}) == "X1"


def test_render_template_text_header_named_body_buttons_and_preview() -> None:
    template = {
        "name": "order_update",
        "language": "en",
        "parameter_format": "named",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{order_id}}"},
            {"type": "BODY", "text": "Hi {{first_name}}, your order ships {{day}}."},
            {"type": "FOOTER", "text": "Thanks"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Track", "url": "https://t.example.org/{{1}}"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550051310"},
                    {"type": "QUICK_REPLY", "text": "Stop"},
                ],
            },
        ],
    }
    components: list[dict[str, Any]] = [
        {
            "type": "header",
            "parameters": [{"type": "text", "parameter_name": "order_id", "text": "A-1"}],
        },
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "day", "text": "today"},
                {"type": "text", "parameter_name": "first_name", "text": "Asha"},
            ],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "A-1"}],
        },
    ]
    rendered = render_template(template, components)
    assert rendered.header_text == "Order A-1"
    assert rendered.body_text == "Hi Asha, your order ships today."
    assert rendered.footer_text == "Thanks"
    assert rendered.button_urls == {0: "https://t.example.org/A-1"}
    assert rendered.preview == (
        "*Order A-1*\nHi Asha, your order ships today.\n_Thanks_\n"
        "[Track: https://t.example.org/A-1]\n[Call: +15550051310]\n[Stop]"
    )


def test_render_template_missing_button_value() -> None:
    template = {
        "components": [
            {"type": "BODY", "text": "Hi"},
            {
                "type": "BUTTONS",
                "buttons": [{"type": "URL", "text": "Go", "url": "https://x.org/{{1}}"}],
            },
        ]
    }
    with pytest.raises(RenderError, match=r"button 0: no value for \{\{1\}\}"):
        render_template(template, [])


def test_render_template_carousel_cards() -> None:
    rendered = render_template(carousel_template(), carousel_components())
    assert rendered.body_text == "Summer is here, Asha!"
    bodies = [card.body_text for card in rendered.cards]
    assert bodies == ["Sunglasses for just $10", "Hat for just $5"]
    assert rendered.cards[1].button_urls == {1: "https://shop.example.org/p/sku1"}
    assert "--- card 2 ---\nHat for just $5" in rendered.preview
