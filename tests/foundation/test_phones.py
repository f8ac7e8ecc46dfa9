"""Phone normalization: the one function every input goes through (E.164 digits without +)."""

from __future__ import annotations

import pytest

from waconnect.phones import InvalidPhone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # India: the forms the issue names, plus national forms with a default country.
        ("+91 88895 00122", None, "918889500122"),
        ("918889500122", None, "918889500122"),
        ("+918889500122", None, "918889500122"),
        ("0091 88895 00122", None, "918889500122"),
        ("8889500122", "IN", "918889500122"),
        ("08889500122", "IN", "918889500122"),
        ("(0)88895-00122", "in", "918889500122"),
        ("918889500122", "IN", "918889500122"),
        # United States
        ("+1 650-253-0000", None, "16502530000"),
        ("16502530000", None, "16502530000"),
        ("(650) 253-0000", "US", "16502530000"),
        ("650.253.0000", "US", "16502530000"),
        ("+1 650 253 0000", "IN", "16502530000"),
        # United Kingdom
        ("+44 20 7946 0958", None, "442079460958"),
        ("020 7946 0958", "GB", "442079460958"),
        ("07911 123456", "GB", "447911123456"),
        ("447911123456", None, "447911123456"),
        # Brazil: 11-digit national mobiles must not be mistaken for "country code first".
        ("+55 11 91234-5678", None, "5511912345678"),
        ("5511912345678", None, "5511912345678"),
        ("(11) 91234-5678", "BR", "5511912345678"),
        ("11912345678", "BR", "5511912345678"),
        ("011 91234-5678", "BR", "5511912345678"),
    ],
)
def test_normalizes_common_forms(raw: str, country: str | None, expected: str) -> None:
    assert normalize_phone(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country", "reason"),
    [
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("abc", None, "not a number"),
        ("12345", None, "too short"),
        ("+91 12345", None, "too short"),
        ("+91 88895 001221234", None, "too long"),
        ("+999 1234567", None, "country code"),
        ("+1 555 555 5555", None, "not a valid phone number"),
        ("+44 20 7946", "GB", "not a valid phone number"),
    ],
)
def test_rejects_invalid_with_a_reason(raw: str, country: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(raw, country)
    assert reason in str(caught.value)


def test_output_is_digits_only_and_stable() -> None:
    once = normalize_phone("+55 (11) 91234-5678")
    assert once.isdigit()
    assert normalize_phone(once) == once
    assert normalize_phone("+" + once) == once
