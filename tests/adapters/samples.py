"""Stored templates and send components shared by the adapter tests (plain data)."""

from __future__ import annotations

from typing import Any

WABA = "918000000001"


def diwali_template() -> dict[str, Any]:
    """The template of contracts.md A2.3 / B2: image header, body, footer, copy code, QR."""
    return {
        "name": "diwali_offer",
        "language": "en",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW"]}},
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off ends tonight"},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "COPY_CODE", "example": "LAMP20"},
                    {"type": "QUICK_REPLY", "text": "Not now"},
                ],
            },
        ],
    }


def diwali_components(
    name: str = "Asha", payload: str = "7|1731000000|20250101|3|v1|qr1"
) -> list[dict[str, Any]]:
    return [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": "https://cdn.example.org/d.jpg"}}],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": name}, {"type": "text", "text": "20%"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "0",
            "parameters": [{"type": "coupon_code", "coupon_code": "LAMP20"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": payload}],
        },
    ]


def carousel_template() -> dict[str, Any]:
    card = {
        "components": [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "{{1}} for just {{2}}"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Send more like this"},
                    {"type": "URL", "text": "Buy", "url": "https://shop.example.org/p/{{1}}"},
                ],
            },
        ]
    }
    return {
        "name": "summer_carousel",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Summer is here, {{1}}!"},
            {"type": "CAROUSEL", "cards": [card, card]},
        ],
    }


def carousel_components() -> list[dict[str, Any]]:
    def card(k: int, product: str, price: str) -> dict[str, Any]:
        return {
            "card_index": k,
            "components": [
                {
                    "type": "header",
                    "parameters": [
                        {"type": "image", "image": {"link": f"https://cdn.example.org/{k}.jpg"}}
                    ],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": product},
                        {"type": "text", "text": price},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": f"more-{k}"}],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "1",
                    "parameters": [{"type": "text", "text": f"sku{k}"}],
                },
            ],
        }

    return [
        {"type": "body", "parameters": [{"type": "text", "text": "Asha"}]},
        # Cards deliberately out of order: card_index decides.
        {"type": "carousel", "cards": [card(1, "Hat", "$5"), card(0, "Sunglasses", "$10")]},
    ]


def lto_template() -> dict[str, Any]:
    return {
        "name": "flash_sale",
        "language": "en",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "VIDEO"},
            {
                "type": "LIMITED_TIME_OFFER",
                "limited_time_offer": {"text": "Expiring offer!", "has_expiration": True},
            },
            {"type": "BODY", "text": "Good news, {{1}}! Use code {{2}}."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "COPY_CODE", "example": "HOTS25"},
                    {"type": "URL", "text": "Book now!", "url": "https://x.example.org/{{1}}"},
                ],
            },
        ],
    }


def lto_components(expiry: int | None = 1_731_100_000_000) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = [
        {
            "type": "header",
            "parameters": [{"type": "video", "video": {"link": "https://cdn.example.org/v.mp4"}}],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "HOTS25"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "0",
            "parameters": [{"type": "coupon_code", "coupon_code": "HOTS25"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "n3mtql"}],
        },
    ]
    if expiry is not None:
        components.insert(
            1,
            {
                "type": "limited_time_offer",
                "parameters": [
                    {
                        "type": "limited_time_offer",
                        "limited_time_offer": {"expiration_time_ms": expiry},
                    }
                ],
            },
        )
    return components
