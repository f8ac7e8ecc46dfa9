"""MSG91's native API (contracts.md Part B): B2 bulk, B3 session, B7 answers, B5 webhooks."""

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
from waconnect.providers.adapters import msg91
from waconnect.providers.adapters.base import (
    CallbackParseError,
    HttpRequest,
    ProviderEndpoint,
    SendResult,
    SessionSend,
    TemplateSend,
    UnsupportedContent,
)
from waconnect.providers.adapters.msg91 import ADAPTER as MSG91
from waconnect.providers.errors import ErrorFamily, ProviderError

BULK_URL = "https://api.msg91.com/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
SESSION_URL = "https://api.msg91.com/api/v5/whatsapp/whatsapp-outbound-message/"


def body_of(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(request.body)
    return data


def template_send(to: str, name: str = "Asha", reference: str = "1-1") -> TemplateSend:
    return TemplateSend(reference, to, diwali_template(), diwali_components(name))


# --- B2 bulk ------------------------------------------------------------------------------


def test_bulk_with_two_recipients(msg91_endpoint: ProviderEndpoint) -> None:
    items = [
        template_send("919812345678", "Asha", "1-1"),
        template_send("919812345679", "Ravi", "2-1"),
    ]
    assert MSG91.batch_key(items[0]) == MSG91.batch_key(items[1])
    assert MSG91.max_batch(msg91_endpoint) == 100
    request = MSG91.build_request(msg91_endpoint, items)
    assert request.method == "POST"
    assert request.url == BULK_URL
    assert request.headers == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "authkey": "412345ABCDEFabcdef",
    }

    def components(name: str) -> dict[str, Any]:
        # B2's example, plus nothing for the quick reply (no known key for its payload).
        return {
            "header_1": {"type": "image", "value": "https://cdn.example.org/d.jpg"},
            "body_1": {"type": "text", "value": name},
            "body_2": {"type": "text", "value": "20%"},
            "button_1": {"subtype": "COPY_CODE", "type": "coupon_code", "coupon_code": "LAMP20"},
        }

    assert body_of(request) == {
        "integrated_number": WABA,
        "content_type": "template",
        "payload": {
            "messaging_product": "whatsapp",
            "type": "template",
            "template": {
                "name": "diwali_offer",
                "language": {"code": "en", "policy": "deterministic"},
                "namespace": None,
                "to_and_components": [
                    {"to": ["919812345678"], "components": components("Asha")},
                    {"to": ["919812345679"], "components": components("Ravi")},
                ],
            },
        },
    }


def test_named_params_text_header_url_button(msg91_endpoint: ProviderEndpoint) -> None:
    template = {"name": "order_update", "language": "en_US", "namespace": "ns-1", "components": []}
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
                    "type": "date_time",
                    "parameter_name": "day",
                    "date_time": {"fallback_value": "Monday"},
                },
            ],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "A-7"}],
        },
    ]
    request = MSG91.build_request(
        msg91_endpoint, [TemplateSend("1-1", "919812345678", template, components)]
    )
    payload = body_of(request)["payload"]["template"]
    assert payload["namespace"] == "ns-1"
    assert payload["language"] == {"code": "en_US", "policy": "deterministic"}
    assert payload["to_and_components"][0]["components"] == {
        "header_1": {"type": "text", "value": "A-7", "parameter_name": "order_id"},
        "body_1": {"type": "text", "value": "Asha", "parameter_name": "first_name"},
        "body_2": {"type": "text", "value": "Monday", "parameter_name": "day"},
        "button_2": {"subtype": "url", "type": "text", "value": "A-7"},
    }


def test_location_header_four_keys(msg91_endpoint: ProviderEndpoint) -> None:
    location = {"latitude": 12.9716, "longitude": 77.5946, "name": "Store", "address": "MG Road"}
    components = [{"type": "header", "parameters": [{"type": "location", "location": location}]}]
    template = {"name": "visit", "language": "en", "components": []}
    request = MSG91.build_request(
        msg91_endpoint, [TemplateSend("1-1", "919812345678", template, components)]
    )
    assert body_of(request)["payload"]["template"]["to_and_components"][0]["components"] == {
        "header_1_latitude": {"type": "location", "value": "12.9716"},
        "header_1_longitude": {"type": "location", "value": "77.5946"},
        "header_1_name": {"type": "location", "value": "Store"},
        "header_1_address": {"type": "location", "value": "MG Road"},
    }


def test_document_header_with_filename(msg91_endpoint: ProviderEndpoint) -> None:
    document = {"link": "https://cdn.example.org/i.pdf", "filename": "invoice.pdf"}
    components = [{"type": "header", "parameters": [{"type": "document", "document": document}]}]
    template = {"name": "invoice", "language": "en", "components": []}
    request = MSG91.build_request(
        msg91_endpoint, [TemplateSend("1-1", "919812345678", template, components)]
    )
    assert body_of(request)["payload"]["template"]["to_and_components"][0]["components"] == {
        "header_1": {
            "type": "document",
            "value": "https://cdn.example.org/i.pdf",
            "filename": "invoice.pdf",
        }
    }


def test_carousel(msg91_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("1-1", "919812345678", carousel_template(), carousel_components())
    request = MSG91.build_request(msg91_endpoint, [item])
    assert body_of(request)["payload"]["template"]["to_and_components"][0]["components"] == {
        "body_1": {"type": "text", "value": "Asha"},
        "card_0_header_1": {"type": "image", "value": "https://cdn.example.org/0.jpg"},
        "card_0_body_1": {"type": "text", "value": "Sunglasses"},
        "card_0_body_2": {"type": "text", "value": "$10"},
        "card_0_button_2": {"subtype": "url", "type": "text", "value": "sku0"},
        "card_1_header_1": {"type": "image", "value": "https://cdn.example.org/1.jpg"},
        "card_1_body_1": {"type": "text", "value": "Hat"},
        "card_1_body_2": {"type": "text", "value": "$5"},
        "card_1_button_2": {"subtype": "url", "type": "text", "value": "sku1"},
    }


def test_limited_time_offer_expiry_is_refused(msg91_endpoint: ProviderEndpoint) -> None:
    item = TemplateSend("1-1", "919812345678", lto_template(), lto_components())
    with pytest.raises(UnsupportedContent, match="limited-time-offer expiry is not known"):
        MSG91.build_request(msg91_endpoint, [item])
    without = TemplateSend("1-1", "919812345678", lto_template(), lto_components(expiry=None))
    components = body_of(MSG91.build_request(msg91_endpoint, [without]))["payload"]["template"][
        "to_and_components"
    ][0]["components"]
    assert components["button_1"] == {
        "subtype": "COPY_CODE",
        "type": "coupon_code",
        "coupon_code": "HOTS25",
    }
    assert components["header_1"] == {"type": "video", "value": "https://cdn.example.org/v.mp4"}


def test_bulk_contract_violations(msg91_endpoint: ProviderEndpoint) -> None:
    other = TemplateSend("2-1", "919812345679", {**diwali_template(), "name": "other"}, [])
    with pytest.raises(ValueError, match="one template in one language"):
        MSG91.build_request(msg91_endpoint, [template_send("919812345678"), other])
    with pytest.raises(ValueError, match="twice"):
        MSG91.build_request(
            msg91_endpoint, [template_send("919812345678"), template_send("919812345678")]
        )
    session = SessionSend("3-1", "919812345678", {"type": "text", "text": {"body": "x"}})
    with pytest.raises(ValueError, match="one per request"):
        MSG91.build_request(msg91_endpoint, [session, session])
    assert MSG91.batch_key(session) != MSG91.batch_key(template_send("919812345678"))


def test_api_base_default_and_pasted_send_url() -> None:
    for url in ("", "https://api.msg91.com/api/v5/whatsapp/whatsapp-outbound-message/bulk/"):
        endpoint = ProviderEndpoint("msg91", url, WABA, {"authkey": "k"})
        assert MSG91.build_request(endpoint, [template_send("919812345678")]).url == BULK_URL


def test_header_media_id_is_unsupported(msg91_endpoint: ProviderEndpoint) -> None:
    components = [{"type": "header", "parameters": [{"type": "image", "image": {"id": "55"}}]}]
    item = TemplateSend("1-1", "919812345678", diwali_template(), components)
    with pytest.raises(UnsupportedContent, match="needs a media link"):
        MSG91.build_request(msg91_endpoint, [item])


# --- B3 session -----------------------------------------------------------------------------


def session(endpoint: ProviderEndpoint, content: dict[str, Any]) -> HttpRequest:
    return MSG91.build_request(endpoint, [SessionSend("9-1", "919812345678", content)])


def test_session_text(msg91_endpoint: ProviderEndpoint) -> None:
    request = session(msg91_endpoint, {"type": "text", "text": {"body": "Hello"}})
    assert request.url == SESSION_URL
    assert body_of(request) == {
        "integrated_number": WABA,
        "recipient_number": "919812345678",
        "content_type": "text",
        "text": {"body": "Hello"},
    }


def test_session_interactive_buttons_and_list(msg91_endpoint: ProviderEndpoint) -> None:
    interactive = {
        "type": "button",
        "body": {"text": "Pick one"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "a", "title": "A"}},
                {"type": "reply", "reply": {"id": "b", "title": "B"}},
            ]
        },
    }
    payload = body_of(session(msg91_endpoint, {"type": "interactive", "interactive": interactive}))
    assert payload["content_type"] == "interactive"
    assert payload["interactive"] == interactive
    listed = {"type": "list", "body": {"text": "x"}, "action": {"button": "Menu", "sections": []}}
    assert (
        body_of(session(msg91_endpoint, {"type": "interactive", "interactive": listed}))[
            "interactive"
        ]["type"]
        == "list"
    )


def test_session_interactive_limits(msg91_endpoint: ProviderEndpoint) -> None:
    four = {
        "type": "button",
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": str(i), "title": str(i)}} for i in range(4)
            ]
        },
    }
    with pytest.raises(UnsupportedContent, match="1 to 3 buttons; this one has 4"):
        session(msg91_endpoint, {"type": "interactive", "interactive": four})
    with pytest.raises(UnsupportedContent, match="interactive cta_url messages are not supported"):
        session(msg91_endpoint, {"type": "interactive", "interactive": {"type": "cta_url"}})
    with pytest.raises(UnsupportedContent, match="sticker messages are not supported"):
        session(msg91_endpoint, {"type": "sticker", "sticker": {"link": "https://c/s.webp"}})
    located = {"latitude": 12.97, "longitude": 77.59, "name": "Shop", "address": "MG Road"}
    assert body_of(session(msg91_endpoint, {"type": "location", "location": located})) == {
        "integrated_number": WABA,
        "recipient_number": "919812345678",
        "content_type": "location",
        "location": located,
    }


def test_session_media_guess(
    msg91_endpoint: ProviderEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = {
        "type": "document",
        "document": {"link": "https://c/d.pdf", "caption": "Bill", "filename": "b.pdf"},
    }
    assert body_of(session(msg91_endpoint, content)) == {
        "integrated_number": WABA,
        "recipient_number": "919812345678",
        "content_type": "document",
        "attachment_url": "https://c/d.pdf",
        "caption": "Bill",
        "filename": "b.pdf",
    }
    monkeypatch.setattr(msg91, "SESSION_MEDIA_ENABLED", False)
    with pytest.raises(UnsupportedContent, match="not enabled"):
        session(msg91_endpoint, content)


# --- B7 answers -----------------------------------------------------------------------------


def results(status: int, body: bytes, n: int = 2) -> list[SendResult]:
    items = [template_send(f"91981234567{i}") for i in range(n)]
    return MSG91.parse_response(status, body, items)


def test_bulk_success_shares_the_request_id() -> None:
    body = orjson.dumps(
        {
            "status": "success",
            "hasError": False,
            "data": "Your request is in process, check delivery reports for status",
            "errors": None,
            "request_id": "abc123",
        }
    )
    assert results(200, body) == [SendResult(True, provider_request_id="abc123")] * 2


def test_session_success_message_uuid() -> None:
    data = {"message_uuid": "gBEG91", "status": "message submitted successfully"}
    body = orjson.dumps({"status": "success", "hasError": False, "data": data, "errors": None})
    (result,) = results(200, body, n=1)
    assert result == SendResult(True, provider_request_id="gBEG91")


def test_unauthorized_api_errors() -> None:
    body = (
        b'{"status":"fail","hasError":true,"errors":"Unauthorized","code":"401","apiError":"201"}'
    )
    (result,) = results(401, body, n=1)
    assert result.error == ProviderError("msg91:201", "Unauthorized", ErrorFamily.AUTH)
    ip = b'{"status":"fail","hasError":true,"errors":"Unauthorized","code":"401","apiError":"418"}'
    assert results(401, ip, n=1)[0].error == ProviderError(
        "msg91:418", "Unauthorized", ErrorFamily.AUTH
    )


def test_unknown_api_error_takes_the_http_family() -> None:
    body = b'{"status":"fail","hasError":true,"errors":"slow down","apiError":"9001"}'
    (result,) = results(429, body, n=1)
    assert result.error == ProviderError("msg91:9001", "slow down", ErrorFamily.THROTTLED)


def test_business_error_on_200() -> None:
    body = b'{"status":"fail","hasError":true,"data":"Invalid parameter","errors":"No template"}'
    (result,) = results(200, body, n=1)
    assert result.error == ProviderError("msg91:200", "No template", ErrorFamily.INVALID_REQUEST)
    # success status but hasError true is still a failure
    mixed = b'{"status":"success","hasError":true,"errors":["bad number"]}'
    error = results(200, mixed, n=1)[0].error
    assert error is not None and error.title == '["bad number"]'


def test_route_missing_and_server_errors() -> None:
    (missing,) = results(404, b'{"type":"error","msg":"Route Missing"}', n=1)
    assert missing.error == ProviderError("msg91:404", "Route Missing", ErrorFamily.INVALID_REQUEST)
    (server,) = results(502, b"<html>bad gateway</html>", n=1)
    assert server.error is not None and server.error.code == "msg91:502"
    assert server.error.family is ErrorFamily.TRANSIENT
    (unreadable,) = results(200, b"", n=1)
    assert unreadable.in_doubt and not unreadable.accepted


# --- B5 webhooks --------------------------------------------------------------------------


def test_delivery_report_new_webhook() -> None:
    body = orjson.dumps(
        {
            "requestId": "abc123",
            "customerNumber": "919812345678",
            "integratedNumber": "918000000001",
            "uuid": "wamid.HBgM1",
            "templateName": "diwali_offer",
            "eventName": "delivered",
            "direction": "outbound",
            "ts": "2025-01-01T10:00:00+05:30",
            "campaignName": "diwali",
        }
    )
    (report,) = MSG91.parse_delivery(body)
    assert report.status == "delivered"
    assert report.provider_request_id == "abc123"
    assert report.phone == "919812345678"
    assert report.template_name == "diwali_offer"
    assert report.event_id == "wamid.HBgM1"
    assert report.timestamp == datetime(2025, 1, 1, 4, 30, tzinfo=UTC)
    assert report.error is None
    assert report.reference is None
    assert report.extra == {"integratedNumber": "918000000001", "campaignName": "diwali"}


def test_delivery_array_body_with_failures() -> None:
    body = orjson.dumps(
        [
            {
                "requestId": "abc123",
                "customerNumber": "919812345678",
                "status": "Failed",
                "statusCode": "131026",
                "reason": "Message undeliverable",
                "uuid": "u1",
            },
            {
                "requestId": "abc123",
                "customerNumber": "919812345679",
                "eventName": "failed",
                "cleverTapErrorCode": 1004,
                "cleverTapErrorReason": "Too many messages",
                "uuid": "u2",
            },
            {
                "requestId": "abc123",
                "customerNumber": "919812345670",
                "status": "failed",
                "failureReason": "470",
                "uuid": "u3",
            },
            {
                "requestId": "abc123",
                "customerNumber": "919812345671",
                "status": "READ",
                "uuid": "u4",
            },
        ]
    )
    meta, generic, other, read = MSG91.parse_delivery(body)
    assert meta.error == ProviderError(
        "meta:131026", "Message undeliverable", ErrorFamily.INVALID_RECIPIENT
    )
    assert generic.error == ProviderError(
        "generic:1004", "Too many messages", ErrorFamily.THROTTLED
    )
    assert other.error is not None and other.error.code == "msg91:470"
    assert read.status == "read" and read.error is None
    assert [r.event_id for r in (meta, generic, other, read)] == ["u1", "u2", "u3", "u4"]


def test_delivery_old_variant() -> None:
    body = (
        b'{"mobile":"+91 98123 45678","status":"failed","failureReason":"131047","CRQID":"req-9"}'
    )
    (report,) = MSG91.parse_delivery(body)
    assert report.phone == "919812345678"
    assert report.provider_request_id == "req-9"
    assert report.error is not None and report.error.code == "meta:131047"
    assert report.error.family is ErrorFamily.POLICY


def test_failure_without_code() -> None:
    (report,) = MSG91.parse_delivery(
        b'{"customerNumber":"919812345678","status":"failed","reason":"no idea"}'
    )
    assert report.error == ProviderError("msg91:unknown", "no idea", ErrorFamily.TRANSIENT)


def test_delivery_skips_inbound_events_and_inbound_skips_reports() -> None:
    body = orjson.dumps(
        [
            {
                "customerNumber": "919812345678",
                "direction": "inbound",
                "contentType": "text",
                "text": "hi",
            },
            {"customerNumber": "919812345678", "status": "sent", "requestId": "r"},
        ]
    )
    (report,) = MSG91.parse_delivery(body)
    assert report.status == "sent"
    (message,) = MSG91.parse_inbound(body)
    assert message.text == "hi"


def test_inbound_with_stringified_messages() -> None:
    messages = [
        {
            "from": "919812345678",
            "id": "wamid.IN1",
            "timestamp": "1731000100",
            "type": "button",
            "context": {"id": "wamid.OUT1"},
            "button": {"payload": "Not now", "text": "Not now"},
        }
    ]
    body = orjson.dumps(
        {
            "customerNumber": "919812345678",
            "integratedNumber": "918000000001",
            "eventName": "inbound",
            "contentType": "button",
            "messages": orjson.dumps(messages).decode(),
            "button": '{"payload":"Not now","text":"Not now"}',
        }
    )
    (message,) = MSG91.parse_inbound(body)
    assert message.from_phone == "919812345678"
    assert message.to_number == "918000000001"
    assert message.type == "button"
    assert (message.button_payload, message.button_text) == ("Not now", "Not now")
    assert message.context_reference == "wamid.OUT1"
    assert message.event_id == "wamid.IN1"
    assert message.timestamp == datetime(2024, 11, 7, 17, 21, 40, tzinfo=UTC)


def test_inbound_b5_example() -> None:
    body = orjson.dumps(
        {
            "customerNumber": "919812345678",
            "integratedNumber": "918000000001",
            "eventName": "inbound",
            "contentType": "text",
            "text": "price?",
            "messages": '[{"type":"text","text":{"body":"price?"}}]',
            "uuid": "wamid.HBgM",
            "ts": "2025-01-01T10:00:00+05:30",
        }
    )
    (message,) = MSG91.parse_inbound(body)
    assert (message.type, message.text, message.event_id) == ("text", "price?", "wamid.HBgM")
    assert message.timestamp == datetime(2025, 1, 1, 4, 30, tzinfo=UTC)


def test_inbound_flat_fields_without_messages() -> None:
    body = orjson.dumps(
        [
            {
                "customerNumber": "919812345678",
                "direction": "inbound",
                "contentType": "image",
                "url": "https://m/x.jpg",
                "caption": "see",
                "replyMsgId": "wamid.OUT2",
            },
            {
                "customerNumber": "919812345678",
                "direction": "inbound",
                "contentType": "interactive",
                "interactive": '{"type":"button_reply","button_reply":{"id":"b1","title":"Yes"}}',
            },
        ]
    )
    image, interactive = MSG91.parse_inbound(body)
    assert image.type == "image"
    assert image.media == {"url": "https://m/x.jpg", "caption": "see"}
    assert image.context_reference == "wamid.OUT2"
    assert interactive.type == "interactive"
    assert (interactive.button_payload, interactive.button_text) == ("b1", "Yes")


@pytest.mark.parametrize("body", [b"nope", b"[1, 2]", b'{"status":"failed"}', b'{"foo":1}'])
def test_unreadable_delivery_webhooks(body: bytes) -> None:
    with pytest.raises(CallbackParseError):
        MSG91.parse_delivery(body)


@pytest.mark.parametrize("body", [b"nope", b"[1, 2]"])
def test_unreadable_inbound_webhooks(body: bytes) -> None:
    with pytest.raises(CallbackParseError):
        MSG91.parse_inbound(body)


def test_inbound_without_number_is_unreadable() -> None:
    with pytest.raises(CallbackParseError, match="no customerNumber"):
        MSG91.parse_inbound(b'{"direction":"inbound","text":"hi"}')


# --- verify ---------------------------------------------------------------------------------


def test_verify_request_lists_templates(msg91_endpoint: ProviderEndpoint) -> None:
    request = MSG91.build_verify_request(msg91_endpoint)
    assert request == HttpRequest(
        "GET",
        f"https://control.msg91.com/api/v5/whatsapp/get-template-client/{WABA}",
        {"Accept": "application/json", "authkey": "412345ABCDEFabcdef"},
        b"",
    )
    assert request.masked()["headers"]["authkey"] == "••••cdef"
    custom = ProviderEndpoint(
        "msg91", "", WABA, {"authkey": "k"}, templates_base="http://127.0.0.1:9/x/"
    )
    assert (
        MSG91.build_verify_request(custom).url == f"http://127.0.0.1:9/x/get-template-client/{WABA}"
    )
    assert (
        MSG91.parse_verify_response(200, b'{"status":"success","hasError":false,"data":[]}') is None
    )
    error = MSG91.parse_verify_response(401, b'{"status":"fail","hasError":true,"apiError":"201"}')
    assert error is not None and error.family is ErrorFamily.AUTH


def test_unverified_list() -> None:
    assert len(msg91.UNVERIFIED) >= 10
    assert all(line.startswith("msg91 ") for line in msg91.UNVERIFIED)
