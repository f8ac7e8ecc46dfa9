from __future__ import annotations

import pytest

from waconnect.providers.errors import (
    ErrorFamily,
    ProviderError,
    classify,
    error_from_code,
    known_family,
    make_error,
    msg91_answer_family,
)

F = ErrorFamily


@pytest.mark.parametrize(
    ("namespace", "code", "family"),
    [
        ("generic", 2000, F.AUTH),
        ("generic", "2001", F.INVALID_REQUEST),
        ("generic", 2002, F.INVALID_RECIPIENT),
        ("generic", 2003, F.POLICY),
        ("generic", 2004, F.TRANSIENT),
        ("generic", 1000, F.AUTH),
        ("generic", 1001, F.INVALID_REQUEST),
        ("generic", 1002, F.INVALID_RECIPIENT),
        ("generic", 1003, F.INVALID_RECIPIENT),
        ("generic", 1004, F.THROTTLED),
        ("generic", 1005, F.THROTTLED),
        ("generic", 1006, F.POLICY),
        ("generic", 1007, F.INVALID_RECIPIENT),
        ("generic", 1008, F.POLICY),
        ("generic", 1009, F.TRANSIENT),
        ("generic", 1010, F.POLICY),
        ("meta", 130429, F.THROTTLED),
        ("meta", "131056", F.THROTTLED),
        ("meta", 131000, F.TRANSIENT),
        ("meta", 131016, F.TRANSIENT),
        ("meta", 1, F.TRANSIENT),
        ("meta", 2, F.TRANSIENT),
        ("meta", 131057, F.TRANSIENT),
        ("meta", 131026, F.INVALID_RECIPIENT),
        ("meta", 131021, F.INVALID_RECIPIENT),
        ("meta", 130497, F.INVALID_RECIPIENT),
        ("meta", 130472, F.INVALID_RECIPIENT),
        ("meta", 131047, F.POLICY),
        ("meta", 131049, F.POLICY),
        ("meta", 131050, F.POLICY),
        ("meta", 131048, F.POLICY),
        ("meta", 368, F.POLICY),
        ("meta", 131031, F.POLICY),
        ("meta", 131042, F.POLICY),
        ("meta", 131008, F.INVALID_REQUEST),
        ("meta", 131009, F.INVALID_REQUEST),
        ("meta", 100, F.INVALID_REQUEST),
        ("meta", 132000, F.INVALID_REQUEST),
        ("meta", 132001, F.INVALID_REQUEST),
        ("meta", 132005, F.INVALID_REQUEST),
        ("meta", 132007, F.INVALID_REQUEST),
        ("meta", 132012, F.INVALID_REQUEST),
        ("meta", 132015, F.INVALID_REQUEST),
        ("meta", 132016, F.INVALID_REQUEST),
        ("meta", 0, F.AUTH),
        ("meta", 190, F.AUTH),
        ("meta", 10, F.AUTH),
        ("meta", 200, F.AUTH),
        ("meta", 299, F.AUTH),
        ("msg91", 201, F.AUTH),
        ("msg91", "418", F.AUTH),
        ("http", 429, F.THROTTLED),
        ("http", 500, F.TRANSIENT),
        ("http", 503, F.TRANSIENT),
        ("http", 401, F.AUTH),
        ("http", 403, F.AUTH),
        ("http", 400, F.INVALID_REQUEST),
        ("http", 404, F.INVALID_REQUEST),
        ("net", "timeout", F.TRANSIENT),
    ],
)
def test_classify_table(namespace: str, code: str | int, family: ErrorFamily) -> None:
    assert classify(namespace, code) is family


@pytest.mark.parametrize(
    ("namespace", "code", "family"),
    [
        ("generic", 2999, F.TRANSIENT),  # "other", like 2004 / 1009
        ("meta", 135000, F.TRANSIENT),
        ("msg91", 777, F.TRANSIENT),
        ("msg91", "bad_response", F.TRANSIENT),
        ("net", "dns", F.TRANSIENT),
        ("martian", 1, F.TRANSIENT),
    ],
)
def test_unknown_codes_take_the_namespace_default(
    namespace: str, code: str | int, family: ErrorFamily
) -> None:
    assert known_family(namespace, code) is None
    assert classify(namespace, code) is family


def test_msg91_code_without_api_error_is_an_http_status() -> None:
    assert classify("msg91", 429) is F.THROTTLED
    assert classify("msg91", 502) is F.TRANSIENT
    assert classify("msg91", 404) is F.INVALID_REQUEST
    assert classify("msg91", 200) is F.INVALID_REQUEST  # 200 + hasError: a business error


def test_msg91_answer_family_prefers_known_api_error_then_http_status() -> None:
    assert msg91_answer_family("201", 401) is F.AUTH
    assert msg91_answer_family("9999", 429) is F.THROTTLED
    assert msg91_answer_family(None, 503) is F.TRANSIENT
    assert msg91_answer_family(None, 200) is F.INVALID_REQUEST


def test_make_error_namespaces_the_code_and_fills_a_title() -> None:
    error = make_error("generic", 1002)
    assert error == ProviderError("generic:1002", "Invalid phone number", F.INVALID_RECIPIENT)
    assert not error.retryable
    assert make_error("meta", "131026", "Message undeliverable.").title == "Message undeliverable."
    assert make_error("net", "timeout").code == "net:timeout"
    assert make_error("http", 503).code == "http:503"
    assert make_error("msg91", 201).code == "msg91:201"


def test_retryable_is_throttled_or_transient() -> None:
    assert make_error("meta", 130429).retryable
    assert make_error("http", 503).retryable
    assert not make_error("meta", 131047).retryable
    assert not make_error("generic", 2000).retryable


def test_error_from_stored_code() -> None:
    assert error_from_code("meta:131056").family is F.THROTTLED
    assert error_from_code("generic:1004", "busy") == ProviderError(
        "generic:1004", "busy", F.THROTTLED
    )


def test_str_reads_well_in_logs() -> None:
    assert str(make_error("http", 429)) == "http:429 (throttled): HTTP 429"
