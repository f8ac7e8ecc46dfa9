"""The personalization mapping's key grammar, sources and value formatting (focused unit tests
of the module; the end-to-end use is in test_test_send.py and tests/sessions)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.templates.builders import (
    auth_template,
    body,
    buttons,
    card,
    carousel_template,
    copy_code,
    header,
    header_text,
    offer_template,
    quick_reply,
    template,
    url_button,
)
from waconnect.templates.personalization import (
    MappingError,
    MissingVariable,
    compile_mapping,
    format_value,
    mapping_error_response,
)
from waconnect.templates.validation import normalized, validate_template


def lit(value: Any) -> dict[str, Any]:
    return {"literal": value}


def attr(name: str, **extra: Any) -> dict[str, Any]:
    return {"attribute": name, **extra}


def valid(definition: dict[str, Any]) -> dict[str, Any]:
    assert validate_template(definition) == {}, validate_template(definition)
    return normalized(definition)


EVERYTHING = valid(
    template(
        header_text("Order {{1}}", "A-1"),
        body("Hi {{1}}, your total is {{2}}.", "Asha", "100"),
        buttons(url_button("https://shop.example.org/o/{{1}}"), copy_code(), quick_reply()),
        category="MARKETING",
    )
)


def test_every_key_of_a_basic_template_fills_whatsapps_send_format() -> None:
    personalizer = compile_mapping(
        EVERYTHING,
        {
            "header.1": attr("order"),
            "body.1": attr("first_name", default="there"),
            "body.2": attr("total"),
            "buttons.0.1": lit("A 1|x"),
            "buttons.1.1": lit("SAVE20"),
            "buttons.2.payload": lit("yes-please"),
        },
    )
    assert personalizer.attributes == {"order", "first_name", "total"}
    components = personalizer.components({"order": 7, "total": 99.0})
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "7"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "there"}, {"type": "text", "text": "99"}],
        },
        {
            "type": "button",
            "index": "0",
            "sub_type": "url",
            "parameters": [{"type": "text", "text": "A%201%7Cx"}],
        },
        {
            "type": "button",
            "index": "1",
            "sub_type": "copy_code",
            "parameters": [{"type": "coupon_code", "coupon_code": "SAVE20"}],
        },
        {
            "type": "button",
            "index": "2",
            "sub_type": "quick_reply",
            "parameters": [{"type": "payload", "payload": "yes-please"}],
        },
    ]
    preview = personalizer.preview({"order": 7, "total": 99.0})
    assert "*Order 7*" in preview and "Hi there, your total is 99." in preview
    assert "https://shop.example.org/o/A%201%7Cx" in preview


def test_mapping_problems_are_reported_all_at_once_by_key() -> None:
    with pytest.raises(MappingError) as caught:
        compile_mapping(
            EVERYTHING,
            {
                "body.1": {"attribute": "first_name", "literal": "x"},
                "body.3": lit("x"),
                "footer.1": lit("x"),
                "buttons.0.1": {"event_property": "code"},
                "buttons.1.1": "SAVE20",
                "header.1": {"attribute": ""},
                "buttons.2.payload": {"literal": " "},
            },
        )
    problems = caught.value.problems
    assert "exactly one of literal, attribute or event_property" in problems["body.1"]
    assert "no such variable" in problems["body.3"] and "body.2" in problems["body.3"]
    assert "not a variable key" in problems["footer.1"]
    assert "only available where an event started the send" in problems["buttons.0.1"]
    assert '{"literal": ...}' in problems["buttons.1.1"]
    assert "name of the attribute" in problems["header.1"]
    assert problems["body.2"].startswith("required")
    assert problems["buttons.2.payload"] == "literal: give a value (blank text is never sent)"
    error = mapping_error_response(caught.value)
    assert error.status == 422 and error.code == "invalid_mapping"
    assert set(error.fields or {}) == {f"mapping.{key}" for key in problems}


def test_event_properties_where_an_event_started_the_send() -> None:
    personalizer = compile_mapping(
        valid(template(body("Paid {{1}} for {{2}}.", "10", "A-1"))),
        {"body.1": {"event_property": "amount"}, "body.2": {"event_property": "order.id"}},
        events_allowed=True,
    )
    components = personalizer.components({}, {"amount": 12.5, "order": {"id": "A-9"}})
    assert [p["text"] for p in components[0]["parameters"]] == ["12.5", "A-9"]
    assert personalizer.event_properties == {"amount", "order.id"}


@pytest.mark.parametrize(
    ("value", "default", "outcome"),
    [
        ("Asha", None, "Asha"),
        (None, None, MissingVariable),
        ("   ", None, MissingVariable),
        ("", "friend", "friend"),
        ([], None, MissingVariable),
        ({"a": 1}, None, MissingVariable),
        ({"a": 1}, "friend", "friend"),
    ],
)
def test_a_missing_value_is_never_a_blank(value: Any, default: Any, outcome: Any) -> None:
    spec = attr("first_name") if default is None else attr("first_name", default=default)
    personalizer = compile_mapping(valid(template(body())), {"body.1": spec})
    if outcome is MissingVariable:
        with pytest.raises(MissingVariable) as caught:
            personalizer.components({"first_name": value})
        assert caught.value.key == "body.1"
        assert caught.value.reason == "missing_variable:body.1"
    else:
        parameters = personalizer.components({"first_name": value})[0]["parameters"]
        assert parameters == [{"type": "text", "text": outcome}]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (3.0, "3"),
        (2.5, "2.5"),
        (True, "true"),
        ("2024-05-01T00:00:00Z", "2024-05-01"),
        ("2024-05-01T10:30:00Z", "2024-05-01T10:30:00Z"),
        (datetime(2024, 5, 1, 10, 30, tzinfo=UTC), "2024-05-01T10:30:00Z"),
        (date(2024, 5, 1), "2024-05-01"),
        (["gold", "vip"], "gold, vip"),
        (None, None),
    ],
)
def test_values_of_other_types_are_formatted_sensibly(value: Any, text: str | None) -> None:
    assert format_value(value) == text


def test_named_variables_carry_their_parameter_name() -> None:
    definition = valid(
        template(
            {
                "type": "BODY",
                "text": "Hi {{first_name}}, order {{order_id}} ships.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "first_name", "example": "Asha"},
                        {"param_name": "order_id", "example": "A-1"},
                    ]
                },
            },
            parameter_format="named",
        )
    )
    personalizer = compile_mapping(
        definition, {"body.first_name": attr("first_name"), "body.order_id": lit("A-7")}
    )
    assert personalizer.components({"first_name": "Ravi"}) == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ravi", "parameter_name": "first_name"},
                {"type": "text", "text": "A-7", "parameter_name": "order_id"},
            ],
        }
    ]


def test_media_and_location_headers() -> None:
    document = valid(template(header("DOCUMENT"), body("Your invoice.")))
    personalizer = compile_mapping(
        document, {"header.media": lit({"link": "https://x.org/i.pdf", "filename": "i.pdf"})}
    )
    assert personalizer.components({}) == [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "document",
                    "document": {"link": "https://x.org/i.pdf", "filename": "i.pdf"},
                }
            ],
        }
    ]
    image = compile_mapping(
        valid(template(header("IMAGE"), body("Look."))), {"header.media": attr("photo")}
    )
    assert image.components({"photo": "https://x.org/p.jpg"})[0]["parameters"] == [
        {"type": "image", "image": {"link": "https://x.org/p.jpg"}}
    ]
    with pytest.raises(MissingVariable):
        image.components({"photo": "not a url"})
    where = valid(template(header("LOCATION"), body("Find us.")))
    located = compile_mapping(
        where, {"header.location": lit({"latitude": "12.97", "longitude": 77.59, "name": "Shop"})}
    )
    assert located.components({})[0]["parameters"] == [
        {"type": "location", "location": {"latitude": 12.97, "longitude": 77.59, "name": "Shop"}}
    ]
    with pytest.raises(MappingError) as caught:
        compile_mapping(where, {"header.location": lit({"latitude": 91, "longitude": 0})})
    assert "latitude" in caught.value.problems["header.location"]
    with pytest.raises(MappingError) as caught:
        compile_mapping(document, {"header.media": lit({"url": "https://x.org/i.pdf"})})
    assert "link" in caught.value.problems["header.media"]


def test_limited_time_offer_and_carousel_keys() -> None:
    offer = valid(offer_template())
    personalizer = compile_mapping(
        offer,
        {
            "header.media": lit("https://x.org/sale.jpg"),
            "body.1": lit("Asha"),
            "buttons.0.1": lit("SALE20"),
            "buttons.1.1": lit("A-1"),
            "lto.expiration": lit("2030-01-01T00:00:00Z"),
        },
    )
    last = personalizer.components({})[-1]
    assert last == {
        "type": "limited_time_offer",
        "parameters": [
            {
                "type": "limited_time_offer",
                "limited_time_offer": {"expiration_time_ms": 1893456000000},
            }
        ],
    }
    carousel = valid(
        carousel_template([card(text="Card {{1}} for you."), card(text="More {{1}}.")])
    )
    with pytest.raises(MappingError) as caught:
        compile_mapping(carousel, {"body.1": lit("Asha")})
    assert set(caught.value.problems) == {
        "cards.0.header.media",
        "cards.0.body.1",
        "cards.1.header.media",
        "cards.1.body.1",
    }
    filled = compile_mapping(
        carousel,
        {
            "body.1": lit("Asha"),
            "cards.0.header.media": lit("https://x.org/0.jpg"),
            "cards.0.body.1": lit("one"),
            "cards.1.header.media": lit("https://x.org/1.jpg"),
            "cards.1.body.1": lit("two"),
            "cards.1.buttons.0.payload": lit("more-1"),
        },
    ).components({})
    assert filled[-1]["type"] == "carousel"
    cards = filled[-1]["cards"]
    assert [c["card_index"] for c in cards] == [0, 1]
    assert cards[1]["components"] == [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": "https://x.org/1.jpg"}}],
        },
        {"type": "body", "parameters": [{"type": "text", "text": "two"}]},
        {
            "type": "button",
            "index": "0",
            "sub_type": "quick_reply",
            "parameters": [{"type": "payload", "payload": "more-1"}],
        },
    ]


def test_authentication_code_fills_body_and_otp_button() -> None:
    personalizer = compile_mapping(valid(auth_template()), {"body.1": attr("otp")})
    assert personalizer.components({"otp": 123456}) == [
        {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "123456"}],
        },
    ]
