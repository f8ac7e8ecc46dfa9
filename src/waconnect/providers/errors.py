"""Provider error typing: every failure becomes one ``ProviderError`` with a family.

Codes from different sources overlap (``1`` is a Meta code, ``201`` an MSG91 ``apiError`` and an
HTTP status), so a code is always kept with its namespace as ``"<kind>:<code>"``:

===========  ==============================================================
``generic``  the engagement-suite contract: send codes 20xx, report codes 10xx
``msg91``    MSG91's ``apiError`` or, without one, the HTTP status it came with
``meta``     WhatsApp Cloud API codes (whatsapp-rules.md §2.9)
``http``     an HTTP status whose body said nothing better
``net``      no HTTP answer at all: ``timeout``, ``connect``, ``reset``...
===========  ==============================================================

The family is decided once, here, from tables; the dispatcher's retry rule reads only
``ProviderError.family`` / ``retryable`` (design.md, "The outbox is the queue: Retries").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ErrorFamily",
    "ProviderError",
    "classify",
    "error_from_code",
    "known_family",
    "make_error",
    "msg91_answer_family",
]


class ErrorFamily(StrEnum):
    AUTH = "auth"
    INVALID_REQUEST = "invalid_request"
    INVALID_RECIPIENT = "invalid_recipient"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    POLICY = "policy"


_AUTH = ErrorFamily.AUTH
_REQUEST = ErrorFamily.INVALID_REQUEST
_RECIPIENT = ErrorFamily.INVALID_RECIPIENT
_THROTTLED = ErrorFamily.THROTTLED
_TRANSIENT = ErrorFamily.TRANSIENT
_POLICY = ErrorFamily.POLICY


@dataclass(frozen=True, slots=True)
class ProviderError:
    """One failure: ``code`` is ``"<kind>:<code>"``, e.g. ``meta:131026`` or ``http:503``."""

    code: str
    title: str
    family: ErrorFamily

    @property
    def retryable(self) -> bool:
        """True for "slow down" and "try again" failures; everything else fails at once."""
        return self.family in (ErrorFamily.THROTTLED, ErrorFamily.TRANSIENT)

    def __str__(self) -> str:
        return f"{self.code} ({self.family}): {self.title}"


# (family, default title) per code. Titles are only used when the provider sent none.
_GENERIC: dict[int, tuple[ErrorFamily, str]] = {
    # A3: the synchronous answer to a send.
    2000: (_AUTH, "Invalid credentials"),
    2001: (_REQUEST, "Invalid template parameters"),
    2002: (_RECIPIENT, "Invalid phone number"),
    2003: (_POLICY, "Phone number not subscribed"),
    # "Other": nothing says it cannot succeed, so it is retried within the attempt limit.
    2004: (_TRANSIENT, "Other error"),
    # A4: failure codes in delivery reports.
    1000: (_AUTH, "Bad credentials"),
    1001: (_REQUEST, "Bad template parameters"),
    1002: (_RECIPIENT, "Invalid phone number"),
    1003: (_RECIPIENT, "Phone number inactive"),
    # design.md counts 1004 and 1005 as "slow down": the number is busy or out of reach for
    # now, and the provider did not deliver, so a later attempt is safe.
    1004: (_THROTTLED, "Too many messages sent to this number"),
    1005: (_THROTTLED, "Number temporarily unavailable or not in network"),
    1006: (_POLICY, "Number blacklisted"),
    1007: (_RECIPIENT, "Device cannot receive this message"),
    1008: (_POLICY, "Outside the 24-hour window"),
    # "Other", as 2004: retried, bounded by the attempt limit; after that the error stands.
    1009: (_TRANSIENT, "Other error"),
    1010: (_POLICY, "Blocked by Meta"),
}

_META: dict[int, tuple[ErrorFamily, str]] = {
    130429: (_THROTTLED, "Throughput exceeded"),
    131056: (_THROTTLED, "Pair rate limit hit"),
    132069: (_THROTTLED, "Flow throttled"),
    4: (_THROTTLED, "Application request limit reached"),
    80007: (_THROTTLED, "WABA rate limit reached"),
    131000: (_TRANSIENT, "Something went wrong"),
    131016: (_TRANSIENT, "Service unavailable"),
    1: (_TRANSIENT, "API unknown error"),
    2: (_TRANSIENT, "API service unavailable"),
    131057: (_TRANSIENT, "Account in maintenance mode"),
    131026: (_RECIPIENT, "Message undeliverable"),
    131021: (_RECIPIENT, "Recipient cannot be sender"),
    130497: (_RECIPIENT, "Business account restricted from messaging users in this country"),
    130472: (_RECIPIENT, "User's number is part of an experiment"),
    131047: (_POLICY, "Re-engagement message: outside the 24-hour window"),
    131049: (_POLICY, "Withheld for ecosystem health"),
    131050: (_POLICY, "User stopped marketing messages"),
    131048: (_POLICY, "Spam rate limit hit"),
    368: (_POLICY, "Temporarily blocked for policy violations"),
    131031: (_POLICY, "Business account locked"),
    131042: (_POLICY, "Business eligibility payment issue"),
    132068: (_POLICY, "Flow is blocked"),
    131008: (_REQUEST, "Required parameter missing"),
    131009: (_REQUEST, "Parameter value not valid"),
    100: (_REQUEST, "Invalid parameter"),
    131051: (_REQUEST, "Unsupported message type"),
    132000: (_REQUEST, "Template parameter count mismatch"),
    132001: (_REQUEST, "Template does not exist in this language"),
    132005: (_REQUEST, "Template hydrated text too long"),
    132007: (_REQUEST, "Template format character policy violated"),
    132012: (_REQUEST, "Template parameter format mismatch"),
    132015: (_REQUEST, "Template is paused"),
    132016: (_REQUEST, "Template is disabled"),
    0: (_AUTH, "Authentication exception"),
    190: (_AUTH, "Access token expired"),
    10: (_AUTH, "Permission denied"),
}

_MSG91: dict[int, tuple[ErrorFamily, str]] = {
    201: (_AUTH, "Unauthorized: missing or invalid authkey"),
    418: (_AUTH, "IP not whitelisted"),
}

_NET_TITLES = {
    "timeout": "No answer in time",
    "connect": "Could not connect",
    "reset": "Connection closed before an answer",
}

# What an unknown code means, per namespace. Unknown provider codes are retried within the
# attempt limit: a wrong "final" loses a message for good, a wrong "retry" costs a few requests
# and then the last error stands anyway. HTTP statuses are always known by range (below).
_UNKNOWN_DEFAULT: dict[str, ErrorFamily] = {
    "generic": _TRANSIENT,  # like 1009/2004, "other"
    "meta": _TRANSIENT,
    "msg91": _TRANSIENT,
    "net": _TRANSIENT,  # no answer at all: the connection may work next time
}
_FALLBACK = _TRANSIENT  # a namespace nobody registered


def _as_int(code: str | int) -> int | None:
    if isinstance(code, int):
        return code
    try:
        return int(code.strip())
    except ValueError:
        return None


def _http_family(status: int) -> ErrorFamily:
    if status == 429:
        return _THROTTLED
    if status in (401, 403):
        return _AUTH
    if 500 <= status <= 599:
        return _TRANSIENT
    # 4xx: the request is wrong; 3xx: a redirect on a POST endpoint means a wrong URL.
    # Neither gets better by repeating it.
    if 300 <= status <= 499:
        return _REQUEST
    return _TRANSIENT


def _entry(namespace: str, code: str | int) -> tuple[ErrorFamily, str] | None:
    number = _as_int(code)
    if number is None:
        return None
    if namespace == "generic":
        return _GENERIC.get(number)
    if namespace == "meta":
        if 200 <= number <= 299:  # Graph API permission errors
            return (_AUTH, "Permission error")
        return _META.get(number)
    if namespace == "msg91":
        entry = _MSG91.get(number)
        if entry is None and 200 <= number <= 599:
            # Without an apiError, MSG91 errors are keyed by their HTTP status (B7); a 2xx here
            # is a business error reported with hasError (e.g. "Invalid parameter").
            family = _REQUEST if number < 300 else _http_family(number)
            return (family, f"HTTP {number}")
        return entry
    if namespace == "http":
        return (_http_family(number), f"HTTP {number}")
    return None


def known_family(namespace: str, code: str | int) -> ErrorFamily | None:
    """The family from the tables, or None when ``code`` is not known in ``namespace``."""
    entry = _entry(namespace, code)
    return entry[0] if entry else None


def classify(namespace: str, code: str | int) -> ErrorFamily:
    """The family of ``code`` in ``namespace``; unknown codes get the namespace's default."""
    entry = _entry(namespace, code)
    if entry is not None:
        return entry[0]
    return _UNKNOWN_DEFAULT.get(namespace, _FALLBACK)


def make_error(namespace: str, code: str | int, title: str | None = None) -> ProviderError:
    """A typed error for ``code`` in ``namespace``; ``title`` defaults to the table's."""
    code_text = str(code).strip()
    entry = _entry(namespace, code)
    if entry is None:
        family = _UNKNOWN_DEFAULT.get(namespace, _FALLBACK)
        default_title = _NET_TITLES.get(code_text, "Unknown error")
    else:
        family, default_title = entry
    return ProviderError(f"{namespace}:{code_text}", title or default_title, family)


def msg91_answer_family(api_error: str | int | None, http_status: int) -> ErrorFamily:
    """Family of a synchronous MSG91 error (B7): its ``apiError`` when the table knows it, else
    its HTTP status; a 2xx with ``hasError`` is a business error, i.e. an invalid request."""
    number = None if api_error is None else _as_int(api_error)
    entry = None if number is None else _MSG91.get(number)
    if entry is not None:
        return entry[0]
    if 200 <= http_status <= 299:
        return _REQUEST
    return _http_family(http_status)


def error_from_code(code: str, title: str | None = None) -> ProviderError:
    """Rebuild a typed error from a stored ``"<kind>:<code>"`` string."""
    namespace, _, raw = code.partition(":")
    return make_error(namespace, raw, title)
