"""The one function that normalizes phone numbers.

Everywhere in waconnect a phone is E.164 digits without ``+`` (``918889500122``), as MSG91 and
the engagement-suite contract write it. Adapters add ``+`` where a wire format wants it.
"""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """The input is not a valid phone number; the message says why."""


_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
}


def normalize_phone(raw: str, default_country: str | None = None) -> str:
    """Return E.164 digits without ``+``; raise InvalidPhone with a reason.

    Accepts ``+91 88895 00122``, ``918889500122``, ``+918889500122``, ``(0)88895-00122`` with a
    default country, and so on. A number given with only digits and no default country is read
    as international (country code first), which is how WhatsApp numbers are usually written.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("phone number is empty")
    digits_only = text.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if not text.startswith("+") and (default_country is None or _looks_international(digits_only)):
        international = "+" + digits_only.lstrip("0") if digits_only.isdigit() else text
        # With a default country, a long national number (Brazil's and China's mobiles have 11
        # digits) is read as national when it is not a valid international one.
        if default_country is None or _is_valid(international):
            text = international
    try:
        parsed = phonenumbers.parse(text, (default_country or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({_parse_reason(exc)})") from exc
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible in _REASONS:
        raise InvalidPhone(f"{raw!r} is not a valid phone number ({_REASONS[possible]})")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(f"{raw!r} is not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def _is_valid(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


def _looks_international(digits: str) -> bool:
    # 11+ digits without a trunk prefix is almost always "country code + number" in our
    # users' data (918889500122); national numbers are at most 10 digits in most plans.
    return digits.isdigit() and len(digits) >= 11 and not digits.startswith("0")


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "missing or unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "unreadable")


def country_of(phone: str) -> str | None:
    """ISO region code (``IN``) of a normalized phone, or None."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + phone))
    except phonenumbers.NumberParseException:
        return None
