"""Every rule of whatsapp-rules.md §1 that the template alone decides: one passing and at least
one failing case each. A failing case names the field path and a phrase of the reason; the
other violations it may cause are listed, so a case never passes by accident."""

from __future__ import annotations

from typing import Any

import pytest

from tests.templates.builders import (
    app,
    auth_template,
    body,
    buttons,
    card,
    carousel_template,
    copy_code,
    footer,
    header,
    header_text,
    offer,
    offer_template,
    otp,
    phone_button,
    quick_reply,
    template,
    url_button,
)
from waconnect.templates.validation import normalized, template_type, validate_template

# Which rules have a passing and which a failing case: every rule needs both (see the end).
PASSING: set[str] = set()
FAILING: set[str] = set()


def ok(definition: dict[str, Any], rule: str) -> Any:
    PASSING.add(rule)
    return pytest.param(definition, None, None, (), id=f"{rule}-ok")


def bad(
    definition: dict[str, Any], rule: str, path: str, says: str, *also: str, case: str = "bad"
) -> Any:
    FAILING.add(rule)
    return pytest.param(definition, path, says, also, id=f"{rule}-{case}")


def named(*components: dict[str, Any]) -> dict[str, Any]:
    return template(*components, parameter_format="named")


def named_body(text: str, **examples: str) -> dict[str, Any]:
    params = [{"param_name": name, "example": value} for name, value in examples.items()]
    return {"type": "BODY", "text": text, "example": {"body_text_named_params": params}}


def many(button: dict[str, Any], count: int) -> list[dict[str, Any]]:
    return [dict(button) for _ in range(count)]


def mixed(*kinds: str) -> dict[str, Any]:
    made = {"Q": quick_reply(), "U": url_button(), "P": phone_button(), "C": copy_code()}
    return template(buttons(*(dict(made[kind]) for kind in kinds)), category="MARKETING")


def auth_body(text: str) -> dict[str, Any]:
    return {"type": "BODY", "text": text, "example": {"body_text": [["123456"]]}}


CASES = [
    # --- names, languages, categories, status, type ----------------------------------------
    ok(template(name="order_update_2"), "name-charset"),
    bad(template(name="Order-Update"), "name-charset", "name", "other than lowercase letters"),
    ok(template(name="a" * 512), "name-length"),
    bad(template(name="a" * 513), "name-length", "name", "513 characters, the limit is 512"),
    ok(template(language="pt_BR"), "language-list"),
    bad(template(language="xx"), "language-list", "language", "not a WhatsApp language code"),
    ok(template(language="en_US"), "language-underscore"),
    bad(template(language="en-US"), "language-underscore", "language", "use 'en_US'"),
    bad(template(language="en_us"), "language-underscore", "language", "use 'en_US'", case="case"),
    ok(template(category="marketing"), "category"),
    bad(template(category="PROMO"), "category", "category", "unknown category 'PROMO'"),
    bad(template(category=None), "category", "category", "required", case="missing"),
    ok(template(status="approved"), "status"),
    bad(template(status="LIVE"), "status", "status", "unknown status 'LIVE'"),
    ok(template(type="basic"), "type"),
    bad(template(type="carousel"), "type", "type", "needs a CAROUSEL component"),
    bad(template(type="promo"), "type", "type", "unknown type 'promo'", case="unknown"),
    ok(template(parameter_format="positional"), "parameter-format"),
    bad(template(parameter_format="numbered"), "parameter-format", "parameter_format", "named"),
    # --- component counts --------------------------------------------------------------------
    ok(template(header_text(), body(), footer(), buttons(quick_reply())), "component-counts"),
    bad(
        template(header_text(), components=[header_text()]),
        "component-counts",
        "components",
        "exactly one BODY component, found 0",
        case="no-body",
    ),
    bad(
        template(body(), body()),
        "component-counts",
        "components",
        "exactly one BODY component, found 2",
        case="two-bodies",
    ),
    bad(
        template(footer(), footer()),
        "component-counts",
        "components",
        "2 FOOTER components, the limit is 1",
        case="two-footers",
    ),
    bad(
        template({"type": "STICKER"}),
        "component-counts",
        "components.1.type",
        "unknown component type 'STICKER'",
        case="unknown-type",
    ),
    # --- header --------------------------------------------------------------------------------
    ok(template(header("DOCUMENT")), "header-format"),
    bad(template(header("AUDIO")), "header-format", "header.format", "unknown format 'AUDIO'"),
    ok(template(header_text("x" * 60)), "header-text-length"),
    bad(
        template(header_text("x" * 61)),
        "header-text-length",
        "header",
        "61 characters, the limit is 60",
    ),
    ok(template(header_text("Order {{1}}", "A-1")), "header-text-one-variable"),
    bad(
        template(header_text("Order {{1}} for {{2}}", "A-1", "Asha")),
        "header-text-one-variable",
        "header",
        "2 variables, the limit is 1",
    ),
    ok(template(header("LOCATION"), category="UTILITY"), "header-location-category"),
    bad(
        auth_template(header("LOCATION")),
        "header-location-category",
        "header.format",
        "LOCATION headers are for UTILITY and MARKETING",
        "header",
    ),
    ok(template(header("GIF"), category="MARKETING"), "header-gif-marketing"),
    bad(
        template(header("GIF")),
        "header-gif-marketing",
        "header.format",
        "GIF headers are for MARKETING",
    ),
    # --- body and footer -----------------------------------------------------------------------
    ok(template(body("x" * 1024)), "body-length"),
    bad(template(body("x" * 1025)), "body-length", "body", "1025 characters, the limit is 1024"),
    bad(template({"type": "BODY"}), "body-length", "body", "required", case="missing-text"),
    ok(template(footer("x" * 60)), "footer-length"),
    bad(template(footer("x" * 61)), "footer-length", "footer", "61 characters, the limit is 60"),
    bad(template(footer("Hi {{1}}")), "footer-length", "footer", "static text", case="variable"),
    # --- buttons -------------------------------------------------------------------------------
    ok(template(buttons(*many(quick_reply(), 10))), "buttons-total"),
    bad(
        template(buttons(*many(quick_reply(), 8), url_button(), url_button(), phone_button())),
        "buttons-total",
        "buttons",
        "11 buttons, the limit is 10",
    ),
    bad(
        template(buttons(*many(quick_reply(), 11))),
        "buttons-quick-reply-cap",
        "buttons",
        "11 QUICK_REPLY buttons, the limit is 10",
    ),
    ok(template(buttons(url_button(), url_button())), "buttons-url-cap"),
    bad(
        template(buttons(url_button(), url_button(), url_button())),
        "buttons-url-cap",
        "buttons",
        "3 URL buttons, the limit is 2",
    ),
    ok(template(buttons(phone_button())), "buttons-phone-cap"),
    bad(
        template(buttons(phone_button(), phone_button())),
        "buttons-phone-cap",
        "buttons",
        "2 PHONE_NUMBER buttons, the limit is 1",
    ),
    ok(template(buttons(copy_code()), category="MARKETING"), "buttons-copy-code-cap"),
    bad(
        template(buttons(copy_code(), copy_code()), category="MARKETING"),
        "buttons-copy-code-cap",
        "buttons",
        "2 COPY_CODE buttons, the limit is 1",
    ),
    bad(template(buttons()), "buttons-total", "buttons", "at least one button", case="empty"),
    ok(template(buttons(quick_reply("x" * 25))), "button-label-length"),
    bad(
        template(buttons(quick_reply("x" * 26))),
        "button-label-length",
        "buttons.0.text",
        "26 characters, the limit is 25",
    ),
    bad(
        template(buttons({"type": "URL", "url": "https://x.org"})),
        "button-label-length",
        "buttons.0.text",
        "required",
        case="missing",
    ),
    ok(mixed("Q", "Q", "U", "P"), "buttons-grouping"),
    ok(mixed("U", "P", "Q", "Q"), "buttons-grouping-reversed"),
    bad(mixed("Q", "U", "Q"), "buttons-grouping", "buttons", "grouped together"),
    bad(mixed("U", "Q", "U"), "buttons-grouping", "buttons", "grouped together", case="bad-2"),
    bad(
        template(buttons({"type": "SHOP_NOW", "text": "Go"})),
        "button-type",
        "buttons.0.type",
        "unknown button type 'SHOP_NOW'",
    ),
    ok(template(buttons(url_button("https://x.org/" + "a" * 1986))), "url-length"),
    bad(
        template(buttons(url_button("https://x.org/" + "a" * 1987, None))),
        "url-length",
        "buttons.0.url",
        "2001 characters, the limit is 2000",
    ),
    ok(template(buttons(url_button("https://x.org/static", None))), "url-static"),
    bad(
        template(buttons(url_button("https://x.org/{{1}}/{{2}}"))),
        "url-one-variable",
        "buttons.0.url",
        "2 variables, the limit is 1",
    ),
    ok(template(buttons(url_button("https://x.org/track/{{1}}"))), "url-variable-at-end"),
    bad(
        template(buttons(url_button("https://x.org/{{1}}/track"))),
        "url-variable-at-end",
        "buttons.0.url",
        "at the end of the URL",
    ),
    bad(
        template(buttons(url_button("https://x.org/{{1}}", None))),
        "url-example",
        "buttons.0.example",
        "required",
    ),
    ok(template(buttons(phone_button("+" + "9" * 19))), "phone-length"),
    bad(
        template(buttons(phone_button("+" + "9" * 20))),
        "phone-length",
        "buttons.0.phone_number",
        "21 characters, the limit is 20",
    ),
    ok(template(buttons(copy_code("A" * 15)), category="MARKETING"), "copy-code-example"),
    bad(
        template(buttons(copy_code("A" * 16)), category="MARKETING"),
        "copy-code-example",
        "buttons.0.example",
        "16 characters, the limit is 15",
    ),
    bad(
        template(buttons(copy_code(None)), category="MARKETING"),
        "copy-code-example",
        "buttons.0.example",
        "required",
        case="missing",
    ),
    bad(
        template(buttons(otp())),
        "otp-authentication-only",
        "buttons.0.type",
        "OTP buttons are for AUTHENTICATION",
    ),
    # --- variables -----------------------------------------------------------------------------
    ok(template(body("Hi {{1}}, order {{2}} is ready.", "Asha", "A-1")), "positional-sequence"),
    bad(
        template(body("Hi {{1}}, order {{3}} is ready.", "Asha", "A-1")),
        "positional-sequence",
        "body",
        "without gaps, found {{1}}, {{3}}",
        case="gap",
    ),
    bad(
        template(body("Hi {{2}}, order {{1}} is ready.", "Asha", "A-1")),
        "positional-sequence",
        "body",
        "appear in order",
        case="order",
    ),
    bad(
        template(body("Hi {{2}}, your order is ready.", "Asha")),
        "positional-sequence",
        "body",
        "without gaps",
        case="not-from-1",
    ),
    bad(
        template(body("Hi {{name}}, your order is ready.", "Asha")),
        "positional-not-named",
        "body",
        "set parameter_format to named",
    ),
    ok(
        named(
            named_body(
                "Hi {{first_name}}, order {{order_id}} is ready.", first_name="Asha", order_id="A-1"
            )
        ),
        "named-variables",
    ),
    bad(
        named(named_body("Hi {{First}}, your order is ready.", First="Asha")),
        "named-variables",
        "body",
        "lowercase letters and _ only",
        case="case",
    ),
    bad(
        named(named_body("Hi {{name2}}, your order is ready.", name2="Asha")),
        "named-variables",
        "body",
        "lowercase letters and _ only",
        case="digit",
    ),
    bad(
        named(named_body("Hi {{1}}, your order is ready.", first_name="Asha")),
        "named-variables",
        "body",
        "{{1}} is positional, but parameter_format is named",
        "body.example",
        case="positional",
    ),
    bad(
        named(named_body("Hi {{name}}, bye {{name}}.", name="Asha")),
        "named-variables-unique",
        "body",
        "used 2 times",
    ),
    ok(template(body("Hi {{1}}, order {{2}} is ready.", "Asha", "A-1")), "body-examples"),
    bad(
        template({"type": "BODY", "text": "Hi {{1}}, your order is ready."}),
        "body-examples",
        "body.example",
        "required: body_text, one sample value per variable (1)",
    ),
    bad(
        template(body("Hi {{1}}, order {{2}} is ready.", "Asha")),
        "body-examples",
        "body.example",
        "1 values for 2 variables",
        case="count",
    ),
    bad(
        template(body("Hi {{1}}, your order is ready.", " ")),
        "body-examples",
        "body.example",
        "value 1 is empty",
        case="empty",
    ),
    ok(template(header_text("Order {{1}}", "A-1")), "header-examples"),
    bad(
        template(header_text("Order {{1}}")),
        "header-examples",
        "header.example",
        "required: header_text",
    ),
    bad(
        template(header_text("Order {{1}}", "A-1", "A-2")),
        "header-examples",
        "header.example",
        "2 values for 1 variables",
        case="count",
    ),
    ok(
        named(
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Order {{order_id}}",
                "example": {
                    "header_text_named_params": [{"param_name": "order_id", "example": "A-1"}]
                },
            },
            named_body("Hi {{first_name}}, your order is ready.", first_name="Asha"),
        ),
        "named-examples",
    ),
    bad(
        named({"type": "BODY", "text": "Hi {{first_name}}, your order is ready."}),
        "named-examples",
        "body.example",
        "required: body_text_named_params",
    ),
    bad(
        named(named_body("Hi {{first_name}}, your order is ready.", name="Asha")),
        "named-examples",
        "body.example",
        "no sample value for {{first_name}}",
        case="names",
    ),
    ok(template(body("Hi {{1}}, it is {50%} off.", "Asha")), "braces"),
    bad(template(body("Hi {{1}, your order is ready.")), "braces", "body", "mismatched braces"),
    bad(
        template(body("Hi {{1}}}, your order is ready.", "Asha")),
        "braces",
        "body",
        "mismatched braces",
        case="extra",
    ),
    bad(
        template(body("Hi {{#1}}, your order is ready.")),
        "placeholder-characters",
        "body",
        "{{#1}}: a variable holds only letters, digits or _",
    ),
    bad(
        template(body("Save {{$amount}} today.")),
        "placeholder-characters",
        "body",
        "{{$amount}}",
        case="dollar",
    ),
    ok(template(body("Hi {{1}}.", "Asha")), "dangling"),
    bad(
        template(body("{{1}}, your order is ready.")), "dangling", "body", "starts with a variable"
    ),
    bad(
        template(body("Your order is ready, {{1}}")),
        "dangling",
        "body",
        "ends with a variable",
        case="end",
    ),
    ok(template(body("Hi {{1}}, order {{2}} is ready.", "Asha", "A-1")), "adjacent"),
    bad(
        template(body("Hi {{1}}{{2}} is ready.", "Asha", "A-1")),
        "adjacent",
        "body",
        "two variables side by side",
    ),
    bad(
        template(body("Hi {{1}} {{2}} is ready.", "Asha", "A-1")),
        "adjacent",
        "body",
        "two variables side by side",
        case="space",
    ),
    # --- limited-time offer -----------------------------------------------------------------
    ok(offer_template(), "lto-marketing"),
    bad(offer_template(category="UTILITY"), "lto-marketing", "limited_time_offer", "MARKETING"),
    ok(offer_template(offer("x" * 16)), "lto-text-length"),
    bad(
        offer_template(offer("x" * 17)),
        "lto-text-length",
        "limited_time_offer.text",
        "17 characters, the limit is 16",
    ),
    ok(offer_template(header("VIDEO")), "lto-header"),
    bad(offer_template(header_text()), "lto-header", "header.format", "IMAGE or VIDEO header"),
    ok(offer_template(body("Hi {{1}}, " + "x" * 590, "Asha")), "lto-body-length"),
    bad(
        offer_template(body("Hi {{1}}, " + "x" * 591, "Asha")),
        "lto-body-length",
        "body",
        "601 characters, the limit in a limited-time offer is 600",
    ),
    bad(offer_template(footer()), "lto-no-footer", "footer", "no footer"),
    ok(offer_template(buttons(url_button())), "lto-buttons"),
    bad(
        offer_template(buttons(url_button(), quick_reply())),
        "lto-buttons",
        "buttons",
        "copy-code and a URL button only",
    ),
    bad(
        offer_template(buttons(copy_code())),
        "lto-buttons",
        "buttons",
        "needs a URL button",
        case="no-url",
    ),
    # --- carousel ------------------------------------------------------------------------------
    ok(carousel_template(), "carousel-marketing"),
    bad(carousel_template(category="UTILITY"), "carousel-marketing", "carousel", "MARKETING"),
    ok(carousel_template([card() for _ in range(10)]), "carousel-cards"),
    bad(
        carousel_template([card()]),
        "carousel-cards",
        "carousel.cards",
        "1 cards, a carousel has 2 to 10",
    ),
    bad(
        carousel_template([card() for _ in range(11)]),
        "carousel-cards",
        "carousel.cards",
        "11 cards",
        case="eleven",
    ),
    ok(carousel_template([card("VIDEO"), card("VIDEO")]), "carousel-card-header"),
    bad(
        carousel_template([card("DOCUMENT"), card("DOCUMENT")]),
        "carousel-card-header",
        "carousel.cards.0.header",
        "IMAGE or VIDEO",
        "carousel.cards.1.header",
    ),
    bad(
        carousel_template(
            [{"components": [body("Fresh picks."), buttons(quick_reply("More like this"))]}, card()]
        ),
        "carousel-card-header",
        "carousel.cards.0.header",
        "required",
        "carousel.cards",
        case="missing",
    ),
    bad(
        carousel_template([card("IMAGE"), card("VIDEO")]),
        "carousel-same-format",
        "carousel.cards",
        "same header format",
    ),
    ok(carousel_template([card(text="x" * 160), card(text="y" * 160)]), "carousel-card-body"),
    bad(
        carousel_template([card(text="x" * 161), card()]),
        "carousel-card-body",
        "carousel.cards.0.body",
        "161 characters, the limit is 160",
    ),
    ok(carousel_template([card(text=None), card(text=None)]), "carousel-card-body-all-or-none"),
    bad(
        carousel_template([card(), card(text=None)]),
        "carousel-card-body-all-or-none",
        "carousel.cards",
        "1 of 2 cards have a body",
    ),
    ok(
        carousel_template([card(card_buttons=[quick_reply(), url_button()])] * 2),
        "carousel-card-buttons",
    ),
    bad(
        carousel_template([card(card_buttons=[quick_reply(), url_button(), phone_button()])] * 2),
        "carousel-card-buttons",
        "carousel.cards.0.buttons",
        "3 buttons, the limit on a card is 2",
        "carousel.cards.1.buttons",
    ),
    bad(
        carousel_template([card(card_buttons=[copy_code()])] * 2),
        "carousel-card-button-types",
        "carousel.cards.0.buttons.0.type",
        "allowed here are QUICK_REPLY, URL, PHONE_NUMBER",
        "carousel.cards.1.buttons.0.type",
    ),
    bad(
        carousel_template([card(), card(card_buttons=[url_button()])]),
        "carousel-same-structure",
        "carousel.cards.1",
        "same structure",
    ),
    ok(
        carousel_template(
            [card(), card()],
            components=[body("x" * 1024), {"type": "CAROUSEL", "cards": [card(), card()]}],
        ),
        "carousel-body-length",
    ),
    bad(
        carousel_template(
            components=[body("x" * 1025), {"type": "CAROUSEL", "cards": [card(), card()]}]
        ),
        "carousel-body-length",
        "body",
        "1025 characters, the limit is 1024",
    ),
    # --- authentication ------------------------------------------------------------------------
    ok(auth_template(), "auth-otp-type"),
    ok(auth_template(buttons(otp("ONE_TAP", supported_apps=[app()]))), "auth-one-tap"),
    ok(auth_template(buttons(otp("ZERO_TAP", supported_apps=[app()] * 5))), "auth-zero-tap"),
    ok(
        auth_template(buttons(otp("ONE_TAP", package_name="com.x", signature_hash="K8a/AINcGX7"))),
        "auth-one-tap-single-app",
    ),
    bad(
        auth_template(buttons(otp("SMS"))),
        "auth-otp-type",
        "buttons.0.otp_type",
        "unknown otp_type",
    ),
    bad(
        auth_template(buttons({"type": "OTP"})),
        "auth-otp-type",
        "buttons.0.otp_type",
        "required",
        case="missing",
    ),
    bad(
        auth_template(buttons(otp("ONE_TAP"))),
        "auth-supported-apps",
        "buttons.0.supported_apps",
        "required for ONE_TAP",
    ),
    bad(
        auth_template(buttons(otp("ZERO_TAP", supported_apps=[app()] * 6))),
        "auth-supported-apps",
        "buttons.0.supported_apps",
        "6 apps, the limit is 5",
        case="six",
    ),
    bad(
        auth_template(buttons(otp("ONE_TAP", supported_apps=[app(signature="K8a/AINcGX")]))),
        "auth-signature-hash",
        "buttons.0.supported_apps.0.signature_hash",
        "10 characters, an app signature hash has 11",
    ),
    bad(
        auth_template(buttons(otp("ONE_TAP", supported_apps=[app(package="")]))),
        "auth-package-name",
        "buttons.0.supported_apps.0.package_name",
        "required",
    ),
    ok(auth_template({"type": "FOOTER", "code_expiration_minutes": 90}), "auth-code-expiration"),
    bad(
        auth_template({"type": "FOOTER", "code_expiration_minutes": 91}),
        "auth-code-expiration",
        "footer.code_expiration_minutes",
        "must be 1 to 90 minutes, got 91",
    ),
    bad(
        auth_template({"type": "FOOTER", "code_expiration_minutes": 0}),
        "auth-code-expiration",
        "footer.code_expiration_minutes",
        "got 0",
        case="zero",
    ),
    bad(
        auth_template(footer("Do not share it")),
        "auth-no-free-text",
        "footer",
        "free text is not allowed",
        case="footer",
    ),
    ok(auth_template(auth_body("*{{1}}* is your verification code.")), "auth-no-free-text"),
    bad(
        auth_template(auth_body("Hi {{1}}, your code is {{2}}.")),
        "auth-no-free-text",
        "body",
        "free text",
    ),
    bad(
        auth_template(auth_body("{{1}} is your code. Visit https://x.org")),
        "auth-no-free-text",
        "body",
        "URLs",
        case="url",
    ),
    bad(auth_template(header("IMAGE")), "auth-no-media", "header", "no header: no media"),
    bad(
        auth_template(buttons(otp(), url_button())),
        "auth-no-urls",
        "buttons",
        "exactly one OTP button: no URLs",
        "buttons.1",
    ),
    bad(
        {**auth_template(), "components": [{"type": "BODY"}]},
        "auth-otp-button",
        "buttons",
        "required: one OTP button",
    ),
    # --- the passing side of rules whose passing case is shown by another rule above ----------
    ok(template(buttons(*many(quick_reply(), 10))), "buttons-quick-reply-cap"),
    ok(template(buttons(phone_button(), url_button(), copy_code())), "button-type"),
    ok(template(buttons(url_button("https://x.org/track/{{1}}"))), "url-one-variable"),
    ok(template(buttons(url_button("https://x.org/{{1}}", "https://x.org/A-1"))), "url-example"),
    ok(auth_template(buttons(otp())), "otp-authentication-only"),
    ok(template(body("Hi {{1}}, hello.", "Asha")), "placeholder-characters"),
    ok(offer_template(), "lto-no-footer"),
    ok(carousel_template([card("VIDEO"), card("VIDEO")]), "carousel-same-format"),
    ok(
        carousel_template([card(card_buttons=[phone_button(), url_button()])] * 2),
        "carousel-card-button-types",
    ),
    ok(
        carousel_template([card(card_buttons=[url_button()]), card(card_buttons=[url_button()])]),
        "carousel-same-structure",
    ),
    ok(auth_template(buttons(otp("ZERO_TAP", supported_apps=[app()]))), "auth-supported-apps"),
    ok(
        auth_template(buttons(otp("ONE_TAP", supported_apps=[app(signature="a" * 11)]))),
        "auth-signature-hash",
    ),
    ok(
        auth_template(buttons(otp("ONE_TAP", supported_apps=[app(package="com.shop.app")]))),
        "auth-package-name",
    ),
    ok(auth_template(), "auth-no-media"),
    ok(auth_template(buttons(otp())), "auth-no-urls"),
    ok(auth_template(buttons(otp("COPY_CODE"))), "auth-otp-button"),
    ok(template(body("Hi {{1}}, order {{2}} is ready.", "Asha", "A-1")), "positional-not-named"),
    ok(
        named(named_body("Hi {{name}}, see you at {{place}}.", name="Asha", place="MG Road")),
        "named-variables-unique",
    ),
]


@pytest.mark.parametrize(("definition", "path", "says", "also"), CASES)
def test_rule(
    definition: dict[str, Any], path: str | None, says: str | None, also: tuple[str, ...]
) -> None:
    found = validate_template(definition)
    if path is None:
        assert found == {}
        return
    assert path in found, found
    assert says is not None and says in found[path], found
    assert set(found) <= {path, *also}, found


def test_all_violations_come_at_once() -> None:
    definition = template(
        header_text("x" * 61),
        body("y" * 1025),
        footer("z" * 61),
        buttons(quick_reply("q" * 26)),
        name="Bad Name",
        language="en-GB",
    )

    found = validate_template(definition)

    assert found == {
        "name": "'Bad Name' has characters other than lowercase letters, digits and _",
        "language": "'en-GB' is not a WhatsApp language code; use 'en_GB'",
        "header": "61 characters, the limit is 60",
        "body": "1025 characters, the limit is 1024",
        "footer": "61 characters, the limit is 60",
        "buttons.0.text": "26 characters, the limit is 25",
    }


def test_case_of_enum_values_is_free_and_normalized() -> None:
    definition = template(
        {"type": "header", "format": "image"},
        {"type": "buttons", "buttons": [{"type": "quick_reply", "text": "Yes"}]},
        category="utility",
        status="paused",
    )

    assert validate_template(definition) == {}
    data = normalized(definition)
    assert (data["category"], data["status"]) == ("UTILITY", "PAUSED")
    assert [c["type"] for c in data["components"]] == ["HEADER", "BODY", "BUTTONS"]
    assert data["components"][0]["format"] == "IMAGE"
    assert data["components"][2]["buttons"][0]["type"] == "QUICK_REPLY"


@pytest.mark.parametrize(
    ("definition", "kind"),
    [
        (template(), "basic"),
        (offer_template(), "limited_time_offer"),
        (carousel_template(), "carousel"),
        (auth_template(), "authentication"),
    ],
    ids=["basic", "limited_time_offer", "carousel", "authentication"],
)
def test_type_is_derived(definition: dict[str, Any], kind: str) -> None:
    assert template_type(normalized(definition)) == kind
    assert validate_template({**definition, "type": kind}) == {}


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {
            "name": 5,
            "language": ["en"],
            "category": {},
            "status": [],
            "type": {},
            "components": "x",
        },
        template({"type": {"nested": 1}}, buttons({"type": ["URL"]}, "text", {"type": "OTP"})),
        template(header({"x": 1}), {"type": "BODY", "text": 5, "example": {"body_text": 7}}),
        carousel_template([{"components": "x"}, "card", {"components": [{"type": "HEADER"}]}]),
        auth_template(buttons(otp("ONE_TAP", supported_apps=["x", {"signature_hash": 5}]))),
        offer_template({"type": "LIMITED_TIME_OFFER", "limited_time_offer": "soon"}),
    ],
    ids=["empty", "wrong-types", "bad-types", "bad-values", "bad-cards", "bad-apps", "bad-offer"],
)
def test_malformed_input_is_reported_not_raised(definition: dict[str, Any]) -> None:
    assert validate_template(definition)


def test_every_rule_has_a_passing_and_a_failing_case() -> None:
    # Some passing cases are variants (url-static, auth-one-tap...) of a rule failed under
    # its own name; what may not happen is a rule shown failing but never passing.
    unpassed = FAILING - PASSING
    assert not unpassed, f"rules with no passing case: {sorted(unpassed)}"
