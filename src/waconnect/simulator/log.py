"""The simulator's record of accepted messages and its counters.

The log keeps one compact row per accepted message in parallel arrays (a benchmark may push a
million messages through), so a row costs roughly the message key plus a few machine words.
"""

from __future__ import annotations

from array import array
from typing import Any

# Bits of a row's ``flags`` byte: the reports posted successfully, and more.
SENT = 1
DELIVERED = 2
READ = 4
FAILED = 8
FINAL_OK = 16  # the message's last report was posted successfully
INBOUND = 32  # its reply was posted successfully
MSG91_KIND = 64  # came in on a native MSG91 endpoint; its key is "<request id>:<phone>"

STATUS_BITS: dict[str, int] = {"sent": SENT, "delivered": DELIVERED, "read": READ, "failed": FAILED}
_STATUS_ORDER = (("sent", SENT), ("delivered", DELIVERED), ("read", READ), ("failed", FAILED))

# What the simulator decided at acceptance (one byte per row).
OUTCOME_READ = 0
OUTCOME_DELIVERED = 1
OUTCOME_FAILED = 2
OUTCOME_THROTTLED = 3
OUTCOME_INVALID = 4
_OUTCOME_NAMES = ("read", "delivered", "failed", "throttled", "invalid_number")

_INTERN_LIMIT = 10_000


class Stats:
    """Counters served on ``GET /_sim/stats``."""

    __slots__ = (
        "callback_errors",
        "duplicates",
        "faults_5xx",
        "faults_429",
        "faults_timeout",
        "in_flight",
        "inbound_sent",
        "max_in_flight",
        "messages_accepted",
        "rejected",
        "reports_sent",
        "requests",
        "validations",
    )
    requests: int  # send requests received (all native and generic send endpoints)
    messages_accepted: int  # messages accepted (a bulk request accepts one per recipient)
    in_flight: int  # send requests being served now
    max_in_flight: int  # the most send requests served at once, arrival to response
    duplicates: int  # accepted messages a customer would see a second time
    reports_sent: int  # statuses posted successfully
    inbound_sent: int  # replies posted successfully
    callback_errors: int  # callback POSTs given up after their retries
    rejected: int  # sends refused: credentials, validation
    validations: int  # generic validation payloads answered
    faults_429: int
    faults_5xx: int
    faults_timeout: int

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        in_flight = getattr(self, "in_flight", 0)
        for name in self.__slots__:
            setattr(self, name, 0)
        # Requests being served while the counters are cleared still leave.
        self.in_flight = in_flight
        self.max_in_flight = in_flight

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class MessageLog:
    """Accepted messages, oldest first; row numbers (``idx``) are absolute and never reused."""

    __slots__ = (
        "_intern",
        "accepted_at",
        "base",
        "codes",
        "flags",
        "keys",
        "limit",
        "numbers",
        "outcomes",
        "phones",
        "raw_phones",
        "templates",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.clear()

    def clear(self) -> None:
        self.base = 0  # idx of keys[0]; rises when the oldest rows are dropped
        self.keys: list[str] = []
        self.phones = array("q")  # digits as an integer; -1 when kept in raw_phones
        self.raw_phones: dict[int, str] = {}
        self.numbers: list[str] = []
        self.templates: list[str] = []
        self.accepted_at = array("d")
        self.flags = bytearray()
        self.outcomes = bytearray()
        self.codes: dict[int, int] = {}  # idx -> failure code posted (format of the report)
        self._intern: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def total(self) -> int:
        """Rows ever appended since the last clear."""
        return self.base + len(self.keys)

    def append(
        self,
        key: str,
        phone: str,
        number: str,
        template: str,
        accepted_at: float,
        outcome: int,
        msg91: bool,
    ) -> int:
        if len(self.keys) >= self.limit:
            self._drop_oldest(max(1, self.limit // 10))
        idx = self.base + len(self.keys)
        self.keys.append(key)
        if phone.isdigit() and phone[:1] != "0" and len(phone) <= 18:
            self.phones.append(int(phone))
        else:
            self.phones.append(-1)
            self.raw_phones[idx] = phone
        self.numbers.append(self._shared(number))
        self.templates.append(self._shared(template))
        self.accepted_at.append(accepted_at)
        self.flags.append(MSG91_KIND if msg91 else 0)
        self.outcomes.append(outcome)
        return idx

    def mark(self, idx: int, bits: int) -> None:
        pos = idx - self.base
        if pos >= 0:
            self.flags[pos] |= bits

    def set_code(self, idx: int, code: int) -> None:
        if idx >= self.base:
            self.codes[idx] = code

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """Rows ``offset .. offset+limit`` of those still kept, as JSON objects."""
        rows = []
        for pos in range(max(0, offset), min(len(self.keys), offset + limit)):
            idx = self.base + pos
            flags = self.flags[pos]
            phone_int = self.phones[pos]
            phone = self.raw_phones.get(idx, "") if phone_int < 0 else str(phone_int)
            key = self.keys[pos]
            if flags & MSG91_KIND:
                key = f"{key}:{phone}"
            rows.append(
                {
                    "key": key,
                    "kind": "msg91" if flags & MSG91_KIND else "generic",
                    "to": phone,
                    "integrated_number": self.numbers[pos],
                    "template": self.templates[pos] or None,
                    "accepted_at": self.accepted_at[pos],
                    "outcome": _OUTCOME_NAMES[self.outcomes[pos]],
                    "reports": [name for name, bit in _STATUS_ORDER if flags & bit],
                    "failure_code": self.codes.get(idx),
                    "final_report_ok": bool(flags & FINAL_OK),
                    "inbound_sent": bool(flags & INBOUND),
                }
            )
        return rows

    def _shared(self, text: str) -> str:
        # Template names and business numbers repeat: keep one copy of each.
        shared = self._intern.get(text)
        if shared is not None:
            return shared
        if len(self._intern) < _INTERN_LIMIT:
            self._intern[text] = text
        return text

    def _drop_oldest(self, count: int) -> None:
        cut = self.base + count
        del self.keys[:count]
        del self.phones[:count]
        del self.numbers[:count]
        del self.templates[:count]
        del self.accepted_at[:count]
        del self.flags[:count]
        del self.outcomes[:count]
        self.raw_phones = {i: p for i, p in self.raw_phones.items() if i >= cut}
        self.codes = {i: c for i, c in self.codes.items() if i >= cut}
        self.base = cut
