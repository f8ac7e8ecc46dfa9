"""Every component kind, rendered into each wire format that carries it, checked field by field
against contracts.md A2.2 (generic) and B2 (MSG91 bulk) — sent as test sends through the real
dispatcher to the simulator, which refuses what MSG91 would. A kind a format cannot carry is
refused at send with a 422 naming the kind and the provider."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.templates.builders import (
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
    phone_button,
    quick_reply,
    template,
    url_button,
)
from tests.templates.live import Live, live_stack
from waconnect.settings import Settings
from waconnect.simulator import SimulatorOptions, SimulatorServer
from waconnect.simulator.msg91 import check_bulk_components
from waconnect.simulator.responses import Rejected

TO = "919812345678"
IMAGE, VIDEO, PDF = (
    "https://cdn.example.org/a.jpg",
    "https://cdn.example.org/a.mp4",
    ("https://cdn.example.org/invoice.pdf"),
)
EXPIRY_MS = 1893456000000  # 2030-01-01T00:00:00Z


def lit(value: Any) -> dict[str, Any]:
    return {"literal": value}


def text(value: str, name: str | None = None) -> dict[str, str]:
    parameter = {"type": "text", "text": value}
    if name:
        parameter["parameter_name"] = name
    return parameter


def value(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "value": value, **extra}


FULL = template(
    header_text("Hello {{1}}", "Asha"),
    body("Your order {{1}} ships on {{2}}.", "A-1", "Monday"),
    footer("Reply STOP to opt out"),
    buttons(
        quick_reply("Yes"),
        url_button("https://shop.example.org", None),
        url_button("https://shop.example.org/o/{{1}}", "https://shop.example.org/o/A-1"),
        phone_button("+918000000001"),
        copy_code("SAVE20"),
    ),
    name="full_basic",
    category="MARKETING",
)
FULL_MAPPING = {
    "header.1": lit("Asha"),
    "body.1": lit("A-1"),
    "body.2": lit("2030-01-01"),
    "buttons.0.payload": lit("yes-1"),
    "buttons.2.1": lit("A-1"),
    "buttons.4.1": lit("SAVE20"),
}
FULL_GENERIC = [
    {
        "type": "header",
        "header": {"type": "text", "text": {"text": "Hello Asha", "parameters": [text("Asha")]}},
    },
    {
        "type": "body",
        "body": {
            "text": "Your order A-1 ships on 2030-01-01.",
            "parameters": [text("A-1"), text("2030-01-01")],
        },
    },
    {"type": "footer", "footer": "Reply STOP to opt out"},
    {
        "type": "button",
        "index": 0,
        "buttonText": "Yes",
        "subType": "quickReply",
        "parameters": [{"type": "payload", "payload": "yes-1"}],
    },
    {
        "type": "button",
        "index": 1,
        "buttonText": "Track",
        "subType": "staticUrl",
        "parameters": [text("https://shop.example.org")],
    },
    {
        "type": "button",
        "index": 2,
        "buttonText": "Track",
        "subType": "dynamicUrl",
        "parameters": [text("A-1")],
    },
    {
        "type": "button",
        "index": 3,
        "buttonText": "Call us",
        "subType": "callPhone",
        "parameters": [text("+918000000001")],
    },
    {
        "type": "button",
        "index": 4,
        "buttonText": "Copy code",
        "subType": "copy_code",
        "parameters": [{"type": "coupon_code", "coupon_code": "SAVE20"}],
    },
    {"customProps": [{"order_id": "A-991"}]},
]
FULL_MSG91 = {
    "header_1": value("Asha"),
    "body_1": value("A-1"),
    "body_2": value("2030-01-01"),
    "button_3": {"subtype": "url", "type": "text", "value": "A-1"},
    "button_5": {"subtype": "COPY_CODE", "type": "coupon_code", "coupon_code": "SAVE20"},
}

NAMED = template(
    {
        "type": "BODY",
        "text": "Hi {{first_name}}, see you at {{place}}.",
        "example": {
            "body_text_named_params": [
                {"param_name": "first_name", "example": "Asha"},
                {"param_name": "place", "example": "MG Road"},
            ]
        },
    },
    name="named_params",
    parameter_format="named",
)


def media(name: str, fmt: str) -> dict[str, Any]:
    return template(header(fmt), body("Here it is."), name=name)


CAROUSEL = carousel_template(
    [
        card(text="Card {{1}} for you.", card_buttons=[quick_reply("More"), url_button()]),
        card(text="Card {{1}} for you.", card_buttons=[quick_reply("More"), url_button()]),
    ]
)
CAROUSEL_MAPPING = {
    "body.1": lit("Asha"),
    "cards.0.header.media": lit(IMAGE),
    "cards.0.body.1": lit("one"),
    "cards.0.buttons.1.1": lit("c0"),
    "cards.1.header.media": lit(VIDEO.replace(".mp4", ".jpg")),
    "cards.1.body.1": lit("two"),
    "cards.1.buttons.1.1": lit("c1"),
}


def generic_card(link: str, word: str, suffix: str) -> dict[str, Any]:
    return {
        "components": [
            {"type": "header", "header": {"type": "image", "image": {"mediaURL": link}}},
            {"type": "body", "body": {"text": f"Card {word} for you.", "parameters": [text(word)]}},
            {"type": "button", "index": 0, "buttonText": "More", "subType": "quickReply"},
            {
                "type": "button",
                "index": 1,
                "buttonText": "Track",
                "subType": "dynamicUrl",
                "parameters": [text(suffix)],
            },
        ]
    }


CARD_1 = VIDEO.replace(".mp4", ".jpg")
OFFER = offer_template(name="flash_sale")
OFFER_MAPPING = {
    "header.media": lit(IMAGE),
    "body.1": lit("Asha"),
    "buttons.0.1": lit("SALE20"),
    "buttons.1.1": lit("A-1"),
    "lto.expiration": lit("2030-01-01T00:00:00Z"),
}
OFFER_NO_EXPIRY = offer_template(offer(has_expiration=False), name="flash_sale_open")
AUTH = auth_template()

# (case, template, mapping, generic components or None (refused), msg91 components or None)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], Any, Any]] = [
    ("text-header-body-footer-buttons", FULL, FULL_MAPPING, FULL_GENERIC, FULL_MSG91),
    (
        "image-header",
        media("image_header", "IMAGE"),
        {"header.media": lit(IMAGE)},
        [{"type": "header", "header": {"type": "image", "image": {"mediaURL": IMAGE}}}],
        {"header_1": {"type": "image", "value": IMAGE}},
    ),
    (
        "video-header",
        media("video_header", "VIDEO"),
        {"header.media": lit(VIDEO)},
        [{"type": "header", "header": {"type": "video", "video": {"mediaURL": VIDEO}}}],
        {"header_1": {"type": "video", "value": VIDEO}},
    ),
    (
        "document-header",
        media("document_header", "DOCUMENT"),
        {"header.media": lit({"link": PDF, "filename": "invoice.pdf"})},
        [
            {
                "type": "header",
                "header": {"type": "file", "file": {"mediaURL": PDF, "filename": "invoice.pdf"}},
            }
        ],
        {"header_1": {"type": "document", "value": PDF, "filename": "invoice.pdf"}},
    ),
    (
        "location-header",
        media("location_header", "LOCATION"),
        {
            "header.location": lit(
                {"latitude": 12.97, "longitude": 77.59, "name": "Shop", "address": "MG Road"}
            )
        },
        # A2.2: latitude and longitude as strings; name and address are not sent.
        [
            {
                "type": "header",
                "header": {
                    "type": "location",
                    "location": {"latitude": "12.97", "longitude": "77.59"},
                },
            }
        ],
        {
            "header_1_latitude": {"type": "location", "value": "12.97"},
            "header_1_longitude": {"type": "location", "value": "77.59"},
            "header_1_name": {"type": "location", "value": "Shop"},
            "header_1_address": {"type": "location", "value": "MG Road"},
        },
    ),
    (
        "named-variables",
        NAMED,
        {
            "body.first_name": {"attribute": "first_name", "default": "Ravi"},
            "body.place": lit("MG Road"),
        },
        [
            {
                "type": "body",
                "body": {
                    "text": "Hi Ravi, see you at MG Road.",
                    "parameters": [text("Ravi", "first_name"), text("MG Road", "place")],
                },
            }
        ],
        {
            "body_1": value("Ravi", parameter_name="first_name"),
            "body_2": value("MG Road", parameter_name="place"),
        },
    ),
    (
        "limited-time-offer",
        OFFER,
        OFFER_MAPPING,
        [
            {"type": "header", "header": {"type": "image", "image": {"mediaURL": IMAGE}}},
            {
                "type": "body",
                "body": {"text": "Hi Asha, 20% off everything.", "parameters": [text("Asha")]},
            },
            {
                "type": "limited_time_offer",
                "text": "Ends soon!",
                "parameters": [
                    {
                        "type": "limited_time_offer",
                        "limited_time_offer": {"expiration_time_ms": EXPIRY_MS},
                    }
                ],
            },
            {
                "type": "button",
                "index": 0,
                "buttonText": "Copy code",
                "subType": "copy_code",
                "parameters": [{"type": "coupon_code", "coupon_code": "SALE20"}],
            },
            {
                "type": "button",
                "index": 1,
                "buttonText": "Track",
                "subType": "dynamicUrl",
                "parameters": [text("A-1")],
            },
        ],
        None,  # B2 has no known key for the offer's expiry: refused rather than guessed
    ),
    (
        "limited-time-offer-without-expiry",
        OFFER_NO_EXPIRY,
        {k: v for k, v in OFFER_MAPPING.items() if k != "lto.expiration"},
        [
            {"type": "header", "header": {"type": "image", "image": {"mediaURL": IMAGE}}},
            {
                "type": "body",
                "body": {"text": "Hi Asha, 20% off everything.", "parameters": [text("Asha")]},
            },
            {"type": "limited_time_offer", "text": "Ends soon!"},
            {
                "type": "button",
                "index": 0,
                "buttonText": "Copy code",
                "subType": "copy_code",
                "parameters": [{"type": "coupon_code", "coupon_code": "SALE20"}],
            },
            {
                "type": "button",
                "index": 1,
                "buttonText": "Track",
                "subType": "dynamicUrl",
                "parameters": [text("A-1")],
            },
        ],
        {
            "header_1": {"type": "image", "value": IMAGE},
            "body_1": value("Asha"),
            "button_1": {"subtype": "COPY_CODE", "type": "coupon_code", "coupon_code": "SALE20"},
            "button_2": {"subtype": "url", "type": "text", "value": "A-1"},
        },
    ),
    (
        "carousel",
        CAROUSEL,
        CAROUSEL_MAPPING,
        [
            {
                "type": "body",
                "body": {"text": "Summer is here, Asha!", "parameters": [text("Asha")]},
            },
            {
                "type": "carousel",
                "cards": [generic_card(IMAGE, "one", "c0"), generic_card(CARD_1, "two", "c1")],
            },
        ],
        {
            "body_1": value("Asha"),
            "card_0_header_1": {"type": "image", "value": IMAGE},
            "card_0_body_1": value("one"),
            "card_0_button_2": {"subtype": "url", "type": "text", "value": "c0"},
            "card_1_header_1": {"type": "image", "value": CARD_1},
            "card_1_body_1": value("two"),
            "card_1_button_2": {"subtype": "url", "type": "text", "value": "c1"},
        },
    ),
    (
        "authentication",
        AUTH,
        {"body.1": lit("123456")},
        None,  # A2.2: the generic contract carries no authentication templates
        {
            "body_1": value("123456"),
            "button_1": {"subtype": "url", "type": "text", "value": "123456"},
        },
    ),
]


def catalogue_entry(definition: dict[str, Any]) -> dict[str, Any]:
    return {**definition, "status": "APPROVED"}


async def send(
    live: Live, provider_id: int, template_id: int, mapping: dict[str, Any]
) -> httpx.Response:
    return await live.api.post(
        f"/providers/{provider_id}/templates/{template_id}/test",
        json={
            "to": [TO],
            "mapping": mapping,
            "fill_examples": False,
            "custom_props": {"order_id": "A-991"},
        },
    )


async def test_every_component_kind_in_each_wire_format(settings: Settings) -> None:
    async with live_stack(settings) as live:
        live.configure(
            catalogue=[catalogue_entry(case[1]) for case in CASES], check_parameter_counts=True
        )
        generic = await live.provider("generic", mobile_number="918000000001")
        msg91 = await live.provider("msg91", mobile_number="918000000002")
        for case, definition, mapping, generic_wire, msg91_wire in CASES:
            for provider, expected in ((generic, generic_wire), (msg91, msg91_wire)):
                created = await live.template(provider["id"], definition)
                answer = await send(live, provider["id"], created["id"], mapping)
                where = f"{case} on {provider['kind']}"
                if expected is None:
                    assert answer.status_code == 422, (where, answer.text)
                    error = answer.json()["error"]
                    assert error["code"] == "unsupported_by_provider", (where, error)
                    assert error["provider_kind"] == provider["kind"]
                    assert f"kind {provider['kind']}" in error["message"]
                    assert provider["nickname"] in error["message"]
                    continue
                assert answer.status_code == 200, (where, answer.text)
                (result,) = answer.json()["results"]
                assert result["outcome"] == "accepted", (where, result)
                request = result["request"]["body"]
                if provider["kind"] == "generic":
                    check_generic(request, definition, result["message_id"], expected, case)
                else:
                    check_msg91(request, definition, expected)


def check_generic(
    request: dict[str, Any], definition: dict[str, Any], message_id: int, expected: Any, case: str
) -> None:
    assert request["payloadVersion"] == 0.1
    assert request["to"] == "+" + TO
    assert request["wabaNumber"] == "918000000001"
    assert request["isTemplate"] is True
    assert request["msgId"] == f"{message_id}-1"
    assert request["template"] == {
        "namespace": definition["name"],
        "languageCode": definition["language"],
    }
    components = request["components"]
    assert components[-1] == {"customProps": [{"order_id": "A-991"}]}
    wanted = [c for c in expected if "customProps" not in c]
    got = components[:-1]
    if case in ("image-header", "video-header", "document-header", "location-header"):
        # The static body rides along with its rendered text and no parameters.
        assert got[1] == {"type": "body", "body": {"text": "Here it is.", "parameters": []}}
        got = got[:1]
    assert got == wanted


def check_msg91(request: dict[str, Any], definition: dict[str, Any], expected: Any) -> None:
    assert request["integrated_number"] == "918000000002"
    assert request["content_type"] == "template"
    payload = request["payload"]
    assert payload["messaging_product"] == "whatsapp" and payload["type"] == "template"
    sent = payload["template"]
    assert sent["name"] == definition["name"]
    assert sent["language"] == {"code": definition["language"], "policy": "deterministic"}
    assert sent["namespace"] is None
    assert sent["to_and_components"] == [{"to": [TO], "components": expected}]


@pytest.mark.parametrize(
    ("components", "says"),
    [
        ({"body_2": value("x")}, "numbered from 1 without gaps"),
        ({"body_1": value(" ")}, "non-empty"),
        ({"bodyone": value("x")}, "unknown component key"),
        ({"header_1": {"type": "image", "value": "a.jpg"}}, "media URL"),
        ({"header_1": {"type": "image", "value": IMAGE, "filename": "a.jpg"}}, "only a document"),
        ({"header_1_latitude": {"type": "text", "value": "1"}}, "type: location"),
        ({"button_1": {"subtype": "quick_reply", "type": "payload"}}, "subtype must be one of"),
        (
            {"button_1": {"subtype": "COPY_CODE", "type": "coupon_code", "coupon_code": "C" * 16}},
            "longer than 15",
        ),
        ({"card_0_body_2": value("x")}, "card 0 body values must be numbered"),
    ],
)
def test_simulator_refuses_what_msg91_would(components: dict[str, Any], says: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_bulk_components(components)
    assert says in refused.value.message


def test_simulator_checks_parameter_counts_of_known_templates() -> None:
    known = catalogue_entry(FULL)
    check_bulk_components({"body_1": value("a"), "body_2": value("b")}, known)
    with pytest.raises(Rejected, match="132000"):
        check_bulk_components({"body_1": value("a")}, known)


async def test_simulator_refuses_over_limit_interactive_messages() -> None:
    server = await SimulatorServer(SimulatorOptions(callbacks=False)).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            four = [{"type": "reply", "reply": {"id": str(n), "title": str(n)}} for n in range(4)]
            answer = await http.post(
                "/api/v5/whatsapp/whatsapp-outbound-message/",
                json={
                    "integrated_number": "918000000002",
                    "recipient_number": TO,
                    "content_type": "interactive",
                    "interactive": {
                        "type": "button",
                        "body": {"text": "Pick"},
                        "action": {"buttons": four},
                    },
                },
            )
            assert answer.status_code == 400
            assert answer.json()["hasError"] is True
            assert "1 to 3 reply buttons" in answer.json()["errors"]
    finally:
        await server.stop()
