"""The generic contract (contracts.md Part A), field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.adapters.samples import (
    WABA,
    carousel_components,
    carousel_template,
    diwali_components,
    diwali_template,
    lto_components,
    lto_template,
)
from waconnect.providers.adapters import ADAPTER_KINDS, UNVERIFIED, get_adapter
from waconnect.providers.adapters.base import (
    CallbackParseError,
    HttpRequest,
    InboundMessage,
    ProviderEndpoint,
    SendResult,
    SessionSend,
    TemplateSend,
    UnsupportedContent,
)
from waconnect.providers.adapters.generic import ADAPTER as GENERIC
from waconnect.providers.adapters.sandbox import ADAPTER as SANDBOX
from waconnect.providers.errors import ErrorFamily, ProviderError
from waconnect.templates.render import RenderError

REF = "7|1731000000|20250101|3|v1"  # the msgId of A2.3; ours look like "123-1"


def body_of(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(request.body)
    return data


def send(endpoint: ProviderEndpoint, item: TemplateSend | SessionSend) -> dict[str, Any]:
    return body_of(GENERIC.build_request(endpoint, [item]))


# --- A2.3 ---------------------------------------------------------------------------------


def test_a23_example_exactly(generic_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend(
        reference=REF,
        to="919812345678",
        template=diwali_template(),
        components=diwali_components(),
        custom_props={"order_id": "A-991"},
    )
    assert send(generic_endpoint, item) == {
        "payloadVersion": 0.1,
        "to": "+919812345678",
        "wabaNumber": WABA,
        "isTemplate": True,
        "msgId": REF,
        "template": {"namespace": "diwali_offer", "languageCode": "en"},
        "components": [
            {
                "type": "header",
                "header": {"type": "image", "image": {"mediaURL": "https://cdn.example.org/d.jpg"}},
            },
            {
                "type": "body",
                "body": {
                    "text": "Hi Asha, 20% off ends tonight",
                    "parameters": [
                        {"type": "text", "text": "Asha"},
                        {"type": "text", "text": "20%"},
                    ],
                },
            },
            {"type": "footer", "footer": "Reply STOP to opt out"},
            {
                "type": "button",
                "index": 0,
                "subType": "copy_code",
                "buttonText": "Copy code",
                "parameters": [{"type": "coupon_code", "coupon_code": "LAMP20"}],
            },
            {
                "type": "button",
                "index": 1,
                "subType": "quickReply",
                "buttonText": "Not now",
                "parameters": [{"type": "payload", "payload": REF + "|qr1"}],
            },
            {"customProps": [{"order_id": "A-991"}]},
        ],
    }


def test_request_line_and_headers(generic_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("12-1", "919812345678", diwali_template(), diwali_components())
    request = GENERIC.build_request(generic_endpoint, [item])
    assert request.method == "POST"
    assert request.url == "https://bsp.example.org/send"
    # The configured "Content-type" replaces ours instead of being sent twice.
    assert request.headers == {
        "Accept": "application/json",
        "Authkey": "abcdef123456",
        "Content-type": "application/json",
        "Authorization": "Basic dXNlcjpzM2NyZXQtcGFzcw==",
    }


def test_masked_request_hides_secrets(generic_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("12-1", "919812345678", diwali_template(), diwali_components())
    masked = GENERIC.build_request(generic_endpoint, [item]).masked()
    assert masked["headers"]["Authorization"] == "••••cw=="
    assert masked["headers"]["Authkey"] == "••••3456"
    assert masked["headers"]["Accept"] == "application/json"
    assert masked["body"]["msgId"] == "12-1"
    assert masked["method"] == "POST"
    orjson.dumps(masked)  # JSON-able


def test_masking_short_secrets_and_other_names() -> None:
    request = HttpRequest(
        "GET", "https://x", {"X-Api-Token": "abc", "x-secret": "0123456789", "Accept": "a"}
    )
    assert request.masked() == {
        "method": "GET",
        "url": "https://x",
        "headers": {"X-Api-Token": "••••", "x-secret": "••••6789", "Accept": "a"},
        "body": None,
    }


# --- every component kind ------------------------------------------------------------------


def test_text_header_named_params_and_every_button(generic_endpoint: ProviderEndpoint) -> None:
    template = {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "parameter_format": "named",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{order_id}}"},
            {"type": "BODY", "text": "Hi {{first_name}}, total {{total}}."},
            {"type": "FOOTER", "text": "Shop Co"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Yes"},
                    {"type": "QUICK_REPLY", "text": "No"},
                    {"type": "URL", "text": "Track", "url": "https://t.example.org/o/{{1}}"},
                    {"type": "URL", "text": "Shop", "url": "https://shop.example.org"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "918000000001"},
                    {"type": "COPY_CODE", "text": "Copy", "example": "X1"},
                ],
            },
        ],
    }
    components: list[dict[str, Any]] = [
        {
            "type": "header",
            "parameters": [{"type": "text", "parameter_name": "order_id", "text": "A-7"}],
        },
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Asha"},
                {
                    "type": "currency",
                    "parameter_name": "total",
                    "currency": {"fallback_value": "₹500", "code": "INR", "amount_1000": 500000},
                },
            ],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "no-7"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": 2,
            "parameters": [{"type": "text", "text": "A-7"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "5",
            "parameters": [{"type": "coupon_code", "coupon_code": "X1"}],
        },
    ]
    payload = send(generic_endpoint, TemplateSend("9-2", "15551234567", template, components))
    assert payload["template"] == {"namespace": "order_update", "languageCode": "en_US"}
    header, body, footer, *buttons = payload["components"]
    assert header == {
        "type": "header",
        "header": {
            "type": "text",
            "text": {
                "text": "Order A-7",
                "parameters": [{"type": "text", "text": "A-7", "parameter_name": "order_id"}],
            },
        },
    }
    assert body == {
        "type": "body",
        "body": {
            "text": "Hi Asha, total ₹500.",
            "parameters": [
                {"type": "text", "text": "Asha", "parameter_name": "first_name"},
                {"type": "text", "text": "₹500", "parameter_name": "total"},
            ],
        },
    }
    assert footer == {"type": "footer", "footer": "Shop Co"}
    assert buttons == [
        # Without a payload at send time no parameters travel (current A2.2 samples).
        {"type": "button", "index": 0, "buttonText": "Yes", "subType": "quickReply"},
        {
            "type": "button",
            "index": 1,
            "buttonText": "No",
            "subType": "quickReply",
            "parameters": [{"type": "payload", "payload": "no-7"}],
        },
        {
            "type": "button",
            "index": 2,
            "buttonText": "Track",
            "subType": "dynamicUrl",
            "parameters": [{"type": "text", "text": "A-7"}],
        },
        {
            "type": "button",
            "index": 3,
            "buttonText": "Shop",
            "subType": "staticUrl",
            "parameters": [{"type": "text", "text": "https://shop.example.org"}],
        },
        {
            "type": "button",
            "index": 4,
            "buttonText": "Call",
            "subType": "callPhone",
            "parameters": [{"type": "text", "text": "+918000000001"}],
        },
        {
            "type": "button",
            "index": 5,
            "buttonText": "Copy",
            "subType": "copy_code",
            "parameters": [{"type": "coupon_code", "coupon_code": "X1"}],
        },
    ]
    assert "customProps" not in orjson.dumps(payload).decode()


def _header_only(fmt: str) -> dict[str, Any]:
    return {
        "name": "h",
        "language": "en",
        "category": "UTILITY",
        "components": [{"type": "HEADER", "format": fmt}, {"type": "BODY", "text": "Hello"}],
    }


def test_document_header_is_file(generic_endpoint: ProviderEndpoint) -> None:
    components: list[dict[str, Any]] = [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "document",
                    "document": {
                        "link": "https://cdn.example.org/i.pdf",
                        "filename": "invoice.pdf",
                    },
                }
            ],
        }
    ]
    item = TemplateSend("1-1", "919812345678", _header_only("DOCUMENT"), components)
    header, body = send(generic_endpoint, item)["components"]
    assert header == {
        "type": "header",
        "header": {
            "type": "file",
            "file": {"mediaURL": "https://cdn.example.org/i.pdf", "filename": "invoice.pdf"},
        },
    }
    assert body == {"type": "body", "body": {"text": "Hello", "parameters": []}}


def test_location_header_sends_coordinates_as_strings(generic_endpoint: ProviderEndpoint) -> None:
    location = {"latitude": 12.9716, "longitude": 77.5946, "name": "Store", "address": "MG Road"}
    components = [{"type": "header", "parameters": [{"type": "location", "location": location}]}]
    item = TemplateSend("1-1", "919812345678", _header_only("LOCATION"), components)
    header = send(generic_endpoint, item)["components"][0]
    assert header == {
        "type": "header",
        "header": {"type": "location", "location": {"latitude": "12.9716", "longitude": "77.5946"}},
    }


def test_video_header(generic_endpoint: ProviderEndpoint) -> None:
    components: list[dict[str, Any]] = [
        {"type": "header", "parameters": [{"type": "video", "video": {"link": "https://v/x.mp4"}}]}
    ]
    item = TemplateSend("1-1", "919812345678", _header_only("VIDEO"), components)
    header = send(generic_endpoint, item)["components"][0]
    assert header == {
        "type": "header",
        "header": {"type": "video", "video": {"mediaURL": "https://v/x.mp4"}},
    }


def test_limited_time_offer(generic_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("5-1", "919812345678", lto_template(), lto_components())
    header, offer, body, copy_code, url = send(generic_endpoint, item)["components"]
    assert header["header"] == {
        "type": "video",
        "video": {"mediaURL": "https://cdn.example.org/v.mp4"},
    }
    assert offer == {
        "type": "limited_time_offer",
        "text": "Expiring offer!",
        "parameters": [
            {
                "type": "limited_time_offer",
                "limited_time_offer": {"expiration_time_ms": 1_731_100_000_000},
            }
        ],
    }
    assert body["body"]["text"] == "Good news, Pablo! Use code HOTS25."
    assert copy_code["subType"] == "copy_code"
    assert url["index"] == 1
    assert url["subType"] == "dynamicUrl"
    assert url["parameters"] == [{"type": "text", "text": "n3mtql"}]


def test_limited_time_offer_with_expiration_needs_a_time(
    generic_endpoint: ProviderEndpoint,
) -> None:
    item = TemplateSend("5-1", "919812345678", lto_template(), lto_components(expiry=None))
    with pytest.raises(RenderError, match="limited_time_offer: no expiration time given"):
        GENERIC.build_request(generic_endpoint, [item])


def test_carousel(generic_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("6-1", "919812345678", carousel_template(), carousel_components())
    body, carousel = send(generic_endpoint, item)["components"]
    assert body["body"]["text"] == "Summer is here, Asha!"
    assert carousel["type"] == "carousel"
    first, second = carousel["cards"]
    assert first == {
        "components": [
            {
                "type": "header",
                "header": {"type": "image", "image": {"mediaURL": "https://cdn.example.org/0.jpg"}},
            },
            {
                "type": "body",
                "body": {
                    "text": "Sunglasses for just $10",
                    "parameters": [
                        {"type": "text", "text": "Sunglasses"},
                        {"type": "text", "text": "$10"},
                    ],
                },
            },
            {
                "type": "button",
                "index": 0,
                "buttonText": "Send more like this",
                "subType": "quickReply",
                "parameters": [{"type": "payload", "payload": "more-0"}],
            },
            {
                "type": "button",
                "index": 1,
                "buttonText": "Buy",
                "subType": "dynamicUrl",
                "parameters": [{"type": "text", "text": "sku0"}],
            },
        ]
    }
    assert second["components"][1]["body"]["text"] == "Hat for just $5"


def test_missing_body_value_is_a_render_error(generic_endpoint: ProviderEndpoint) -> None:
    components = diwali_components()
    components[1] = {"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}
    item = TemplateSend("1-1", "919812345678", diwali_template(), components)
    with pytest.raises(RenderError, match=r"body: no value for \{\{2\}\}"):
        GENERIC.build_request(generic_endpoint, [item])


def test_missing_header_image_is_a_render_error(generic_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("1-1", "919812345678", diwali_template(), diwali_components()[1:])
    with pytest.raises(RenderError, match="header: no image given"):
        GENERIC.build_request(generic_endpoint, [item])


# --- unsupported -------------------------------------------------------------------------


def test_authentication_template_is_unsupported(generic_endpoint: ProviderEndpoint) -> None:
    template = {
        "name": "otp",
        "language": "en",
        "category": "AUTHENTICATION",
        "components": [{"type": "BODY"}, {"type": "BUTTONS", "buttons": [{"type": "OTP"}]}],
    }
    item = TemplateSend("1-1", "919812345678", template, [])
    with pytest.raises(UnsupportedContent, match="cannot carry authentication templates"):
        GENERIC.build_request(generic_endpoint, [item])
    template["category"] = "utility"  # mislabelled, but the OTP button gives it away
    with pytest.raises(UnsupportedContent, match="cannot carry authentication templates"):
        GENERIC.build_request(generic_endpoint, [item])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"type": "interactive", "interactive": {"type": "button"}},
            "interactive messages are not supported by provider kind generic",
        ),
        (
            {"type": "location", "location": {"latitude": 1, "longitude": 2}},
            "location messages are not supported by provider kind generic",
        ),
        ({"type": "image", "image": {"id": "1234"}}, "needs a media link for image messages"),
    ],
)
def test_unsupported_session_content(
    generic_endpoint: ProviderEndpoint, content: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnsupportedContent, match=message):
        GENERIC.build_request(generic_endpoint, [SessionSend("1-1", "919812345678", content)])


def test_sandbox_messages_name_their_kind(generic_endpoint: ProviderEndpoint) -> None:
    item = SessionSend("1-1", "919812345678", {"type": "sticker", "sticker": {"link": "x"}})
    with pytest.raises(UnsupportedContent, match="by provider kind sandbox"):
        SANDBOX.build_request(generic_endpoint, [item])


def test_header_media_id_is_unsupported(generic_endpoint: ProviderEndpoint) -> None:
    components = diwali_components()
    components[0] = {"type": "header", "parameters": [{"type": "image", "image": {"id": "77"}}]}
    item = TemplateSend("1-1", "919812345678", diwali_template(), components)
    with pytest.raises(UnsupportedContent, match="needs a media link for the header"):
        GENERIC.build_request(generic_endpoint, [item])


def test_one_item_per_request(generic_endpoint: ProviderEndpoint) -> None:
    item = SessionSend("1-1", "919812345678", {"type": "text", "text": {"body": "x"}})
    assert GENERIC.max_batch(generic_endpoint) == 1
    assert GENERIC.batch_key(item) != GENERIC.batch_key(SessionSend("1-2", "9198", item.content))
    with pytest.raises(ValueError, match="one message per request"):
        GENERIC.build_request(generic_endpoint, [item, item])


# --- A2.5 freeform --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"type": "text", "text": {"body": "Your refund was processed.", "preview_url": False}},
            {"type": "text", "text": {"body": "Your refund was processed."}},
        ),
        (
            {"type": "image", "image": {"link": "https://c/i.jpg", "caption": "Look"}},
            {"type": "image", "image": {"mediaURL": "https://c/i.jpg", "caption": "Look"}},
        ),
        (
            {"type": "video", "video": {"link": "https://c/v.mp4"}},
            {"type": "video", "video": {"mediaURL": "https://c/v.mp4"}},
        ),
        (
            {
                "type": "document",
                "document": {"link": "https://c/d.pdf", "caption": "Bill", "filename": "b.pdf"},
            },
            {
                "type": "file",
                "file": {"mediaURL": "https://c/d.pdf", "caption": "Bill", "filename": "b.pdf"},
            },
        ),
        (
            {"type": "audio", "audio": {"link": "https://c/a.ogg"}},
            {"type": "audio", "audio": {"mediaURL": "https://c/a.ogg"}},
        ),
    ],
)
def test_freeform_shapes(
    generic_endpoint: ProviderEndpoint, content: dict[str, Any], expected: dict[str, Any]
) -> None:
    payload = send(generic_endpoint, SessionSend("conv-88", "919812345678", content))
    assert payload == {
        "payloadVersion": 0.1,
        "to": "+919812345678",
        "wabaNumber": WABA,
        "isTemplate": False,
        "msgId": "conv-88",
        **expected,
    }


# --- A3 responses --------------------------------------------------------------------------

ITEM = SessionSend("1-1", "919812345678", {"type": "text", "text": {"body": "x"}})


def one_result(status: int, body: bytes) -> SendResult:
    (result,) = GENERIC.parse_response(status, body, [ITEM])
    return result


def test_a3_success() -> None:
    assert one_result(200, b'{"status":"success"}') == SendResult(accepted=True)
    assert one_result(200, b'{"status":"SUCCESS","extra":1}').accepted


def test_a3_failure_codes() -> None:
    body = b'{"status":"failure","error":{"code":2002,"message":"Invalid phone number"}}'
    result = one_result(200, body)
    assert not result.accepted
    assert result.error == ProviderError(
        "generic:2002", "Invalid phone number", ErrorFamily.INVALID_RECIPIENT
    )
    auth = one_result(200, b'{"status":"failure","error":{"code":"2000","message":"bad creds"}}')
    assert auth.error is not None and auth.error.family is ErrorFamily.AUTH
    other = one_result(200, b'{"status":"failure","error":{"code":2004,"message":"x"}}')
    assert other.error is not None and other.error.retryable


def test_a3_http_statuses() -> None:
    throttled = one_result(429, b'{"message":"Too many requests to process"}')
    assert throttled.error == ProviderError(
        "http:429", "Too many requests to process", ErrorFamily.THROTTLED
    )
    server = one_result(
        500, b'{"status":"failure","error":{"message":"Unable to process the request"}}'
    )
    assert server.error == ProviderError(
        "http:500", "Unable to process the request", ErrorFamily.TRANSIENT
    )
    assert one_result(503, b"<html>").error == ProviderError(
        "http:503", "HTTP 503", ErrorFamily.TRANSIENT
    )
    forbidden = one_result(403, b'{"message":"Bad Request"}')
    assert forbidden.error is not None and forbidden.error.family is ErrorFamily.AUTH
    assert one_result(401, b"").error == ProviderError("http:401", "HTTP 401", ErrorFamily.AUTH)
    bad = one_result(400, b"{}")
    assert bad.error is not None and bad.error.family is ErrorFamily.INVALID_REQUEST
    assert not any(r.in_doubt for r in (throttled, server, forbidden, bad))


def test_a3_unreadable_success_is_in_doubt() -> None:
    result = one_result(200, b"OK")
    assert not result.accepted
    assert result.in_doubt
    assert result.error is not None and result.error.code == "generic:bad_response"


def test_a3_one_result_per_item() -> None:
    assert GENERIC.parse_response(200, b'{"status":"success"}', []) == []


# --- A4 delivery reports -------------------------------------------------------------------


def test_a4_example() -> None:
    body = orjson.dumps(
        {
            "payloadVersion": "0.1",
            "statuses": [
                {"msgId": "12-1", "status": "delivered", "timestamp": "1731000042"},
                {
                    "msgId": "13-1",
                    "status": "failed",
                    "timestamp": "1731000043",
                    "error": {"code": 1002, "title": "Invalid phone number."},
                },
            ],
        }
    )
    delivered, failed = GENERIC.parse_delivery(body)
    assert delivered.status == "delivered"
    assert delivered.reference == "12-1"
    assert delivered.timestamp == datetime(2024, 11, 7, 17, 20, 42, tzinfo=UTC)
    assert delivered.error is None
    assert failed.status == "failed"
    assert failed.reference == "13-1"
    assert failed.error == ProviderError(
        "generic:1002", "Invalid phone number.", ErrorFamily.INVALID_RECIPIENT
    )


def test_a4_variants_msg_id_lowercase_version_clicked_and_case() -> None:
    body = orjson.dumps(
        {
            "payloadversion": "0.1",
            "statuses": [
                {"msg_id": "12-1", "status": "READ", "timestamp": 1731000042},
                {
                    "msgId": "12-1",
                    "status": "Clicked",
                    "timestamp": "1731000050",
                    "url": "https://shop.example.org/p",
                    "shortUrl": "https://s.example/ab",
                    "userAgent": "Mozilla/5.0",
                    "ts": "1731000050",
                },
                {"msgId": "14-2", "status": "failed", "error": {"code": "1004", "title": "busy"}},
                {"msgId": "15-1", "status": "Sent", "timestamp": "1731000042000"},  # ms
            ],
        }
    )
    read, clicked, throttled, sent = GENERIC.parse_delivery(body)
    assert (read.status, read.reference) == ("read", "12-1")
    assert clicked.status == "clicked"
    assert clicked.extra == {
        "url": "https://shop.example.org/p",
        "shortUrl": "https://s.example/ab",
        "userAgent": "Mozilla/5.0",
        "ts": "1731000050",
    }
    assert throttled.error is not None and throttled.error.family is ErrorFamily.THROTTLED
    assert throttled.timestamp is None
    assert sent.status == "sent"
    assert sent.timestamp == datetime(2024, 11, 7, 17, 20, 42, tzinfo=UTC)


def test_a4_single_status_without_list() -> None:
    (report,) = GENERIC.parse_delivery(b'{"msgId":"1-1","status":"delivered"}')
    assert report.reference == "1-1"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"42",
        b'{"payloadVersion":"0.1"}',
        b'{"statuses":[{"msgId":"1-1"}]}',
        b'{"statuses":[1]}',
    ],
)
def test_a4_unreadable(body: bytes) -> None:
    with pytest.raises(CallbackParseError):
        GENERIC.parse_delivery(body)


# --- A5 inbound ----------------------------------------------------------------------------


def test_a5_button_with_payload_and_context() -> None:
    body = orjson.dumps(
        {
            "payloadVersion": "0.1",
            "from": "919812345678",
            "wabaNumber": "918000000001",
            "timestamp": "1731000100",
            "type": "button",
            "context": {"id": "12-1"},
            "button": {"payload": "12-1|qr1", "text": "Not now"},
        }
    )
    assert GENERIC.parse_inbound(body) == [
        InboundMessage(
            from_phone="919812345678",
            to_number="918000000001",
            type="button",
            text="Not now",
            button_payload="12-1|qr1",
            button_text="Not now",
            context_reference="12-1",
            timestamp=datetime(2024, 11, 7, 17, 21, 40, tzinfo=UTC),
        )
    ]


def test_a5_text() -> None:
    body = (
        b'{"payloadversion":"0.1","from":"+919812345678","wabaNumber":"918000000001",'
        b'"timestamp":"1731000100","type":"text","text":{"body":"STOP"}}'
    )
    (message,) = GENERIC.parse_inbound(body)
    assert (message.from_phone, message.type, message.text) == ("919812345678", "text", "STOP")
    assert message.context_reference is None


@pytest.mark.parametrize("key", ["file", "document"])
def test_a5_document_is_file(key: str) -> None:
    body = orjson.dumps(
        {
            "from": "919812345678",
            "type": key,
            key: {
                "mediaURL": "https://m/x.pdf",
                "mimeType": "application/pdf",
                "caption": "bill",
                "filename": "x.pdf",
            },
        }
    )
    (message,) = GENERIC.parse_inbound(body)
    assert message.type == "document"
    assert message.text == "bill"
    assert message.media == {
        "url": "https://m/x.pdf",
        "mime_type": "application/pdf",
        "caption": "bill",
        "filename": "x.pdf",
    }


def test_a5_voice_is_audio() -> None:
    body = b'{"from":"919812345678","type":"voice","voice":{"mediaURL":"https://m/v.ogg","mimeType":"audio/ogg"}}'
    (message,) = GENERIC.parse_inbound(body)
    assert message.type == "audio"
    assert message.media == {"url": "https://m/v.ogg", "mime_type": "audio/ogg"}


def test_a5_location() -> None:
    body = orjson.dumps(
        {
            "from": "919812345678",
            "type": "location",
            "location": {"latitude": "12.97", "longitude": "77.59", "name": "Home"},
        }
    )
    (message,) = GENERIC.parse_inbound(body)
    assert message.location == {"latitude": 12.97, "longitude": 77.59, "name": "Home"}


def test_a5_unknown_type_and_errors() -> None:
    (message,) = GENERIC.parse_inbound(b'{"from":"919812345678","type":"contacts","contacts":[]}')
    assert message.type == "unknown"
    with pytest.raises(CallbackParseError, match="no `from`"):
        GENERIC.parse_inbound(b'{"type":"text","text":{"body":"x"}}')
    with pytest.raises(CallbackParseError):
        GENERIC.parse_inbound(b"[1")


# --- A2.4 verify --------------------------------------------------------------------------


def test_verify_request_is_the_unwrapped_validation_payload(
    generic_endpoint: ProviderEndpoint,
) -> None:
    request = GENERIC.build_verify_request(generic_endpoint)
    assert request.method == "POST"
    assert request.url == generic_endpoint.endpoint_url
    assert request.headers["Authorization"].startswith("Basic ")
    payload = body_of(request)
    assert payload["template"] == {
        "namespace": "whatsapp:hsm:technology:generic:verify",
        "languageCode": "en",
    }
    assert payload["msgId"] == "0|0|0|0"
    assert payload["isTemplate"] is True
    assert payload["wabaNumber"] == WABA
    assert payload["components"] == [
        {
            "type": "body",
            "body": {
                "text": "1 code: 2.Valid for 3 minutes.",
                "parameters": [
                    {"type": "text", "text": "1"},
                    {"type": "text", "text": "2"},
                    {"type": "text", "text": "3"},
                ],
            },
        }
    ]
    assert GENERIC.parse_verify_response(200, b'{"status":"success"}') is None
    error = GENERIC.parse_verify_response(401, b"")
    assert error is not None and error.family is ErrorFamily.AUTH


# --- registry ------------------------------------------------------------------------------


def test_registry() -> None:
    assert ADAPTER_KINDS == ("generic", "msg91", "sandbox")
    assert get_adapter("generic") is GENERIC
    assert get_adapter("sandbox").kind == "sandbox"
    assert get_adapter("msg91").kind == "msg91"
    with pytest.raises(KeyError, match="known: generic, msg91, sandbox"):
        get_adapter("nope")
    assert UNVERIFIED and all(isinstance(line, str) for line in UNVERIFIED)
