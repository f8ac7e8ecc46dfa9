"""Every knob of the MSG91 simulator, with defaults, and how runtime changes are applied."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

CallbackFormat = Literal["generic", "msg91"]
CALLBACK_FORMATS: frozenset[str] = frozenset({"generic", "msg91"})

_RATIOS = (
    "fail_ratio",
    "throttle_fail_ratio",
    "ratio_429",
    "ratio_5xx",
    "ratio_timeout",
    "reply_ratio",
    "read_ratio",
)
_NON_NEGATIVE_FLOATS = (
    "latency_ms",
    "timeout_delay_s",
    "report_delay_ms",
    "callback_timeout_s",
    "callback_backoff_s",
)
_POSITIVE_INTS = ("batch_size", "callback_connections", "max_logged_messages")


@dataclass(slots=True)
class CallbackTarget:
    """Where the simulator posts callbacks for one integrated (business) number.

    ``format`` None means: answer in the format of the endpoint the message came in on
    (generic A4/A5 for the clevertap endpoint, MSG91 B5 webhooks for the native endpoints).
    """

    delivery_url: str | None = None
    inbound_url: str | None = None
    format: CallbackFormat | None = None

    def __post_init__(self) -> None:
        for name in ("delivery_url", "inbound_url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or null")
        if self.format is not None and self.format not in CALLBACK_FORMATS:
            raise ValueError("format must be 'generic', 'msg91' or null")

    @classmethod
    def from_json(cls, value: Any) -> CallbackTarget:
        if isinstance(value, CallbackTarget):
            return value
        if not isinstance(value, dict):
            raise ValueError("a callback target must be an object")
        unknown = set(value) - {"delivery_url", "inbound_url", "format"}
        if unknown:
            raise ValueError(f"unknown callback target keys: {sorted(unknown)}")
        return cls(value.get("delivery_url"), value.get("inbound_url"), value.get("format"))

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_url": self.delivery_url,
            "inbound_url": self.inbound_url,
            "format": self.format,
        }


@dataclass(slots=True)
class SimulatorOptions:
    """All knobs of the simulator. Every one can be changed at runtime via ``POST /_sim/config``,
    except ``callback_connections`` and ``callback_timeout_s`` (read when the app starts)."""

    # Faults and pace of the send endpoints.
    latency_ms: float = 0
    ratio_429: float = 0
    ratio_5xx: float = 0
    ratio_timeout: float = 0
    timeout_delay_s: float = 5.0
    # What happens to accepted messages.
    fail_ratio: float = 0
    throttle_fail_ratio: float = 0
    read_ratio: float = 1.0
    reply_ratio: float = 0
    # Callbacks.
    callbacks: bool = True
    report_delay_ms: float = 50
    delivery_url: str | None = None
    inbound_url: str | None = None
    callback_format: CallbackFormat | None = None
    numbers: dict[str, CallbackTarget] = field(default_factory=dict)
    batch_size: int = 50
    msg91_batch: bool = False
    callback_retries: int = 3
    callback_backoff_s: float = 0.2
    callback_timeout_s: float = 10.0
    callback_connections: int = 100
    # Determinism, credentials, templates.
    seed: int | None = None
    authkey: str | None = None
    basic_auth: tuple[str, str] | None = None
    catalogue: list[dict[str, Any]] = field(default_factory=list)
    known_templates: frozenset[str] | None = None
    # Numbers that are not on WhatsApp: refused by the single and generic endpoints, failed
    # (131026 / 1002) by report on the bulk endpoint, as MSG91 does.
    invalid_numbers: frozenset[str] = frozenset()
    # Refuse (132000) a bulk send whose body values do not match the catalogued template's
    # variables. Off by default: the catalogue often lists only what an import test needs.
    check_parameter_counts: bool = False
    # Memory bound of the message log (oldest tenth dropped past it).
    max_logged_messages: int = 2_000_000

    def __post_init__(self) -> None:
        for name in _RATIOS:
            value = _number(name, getattr(self, name))
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
            setattr(self, name, value)
        for name in _NON_NEGATIVE_FLOATS:
            value = _number(name, getattr(self, name))
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            setattr(self, name, value)
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
        if (
            isinstance(self.callback_retries, bool)
            or not isinstance(self.callback_retries, int)
            or self.callback_retries < 0
        ):
            raise ValueError("callback_retries must be a non-negative integer")
        for name in ("callbacks", "msg91_batch", "check_parameter_counts"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValueError("seed must be an integer or null")
        for name in ("authkey", "delivery_url", "inbound_url"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or null")
        if self.callback_format is not None and self.callback_format not in CALLBACK_FORMATS:
            raise ValueError("callback_format must be 'generic', 'msg91' or null")
        if self.basic_auth is not None:
            pair = tuple(self.basic_auth)
            if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
                raise ValueError("basic_auth must be [username, password] or null")
            self.basic_auth = (pair[0], pair[1])
        if not isinstance(self.catalogue, list) or not all(
            isinstance(item, dict) and isinstance(item.get("name"), str) for item in self.catalogue
        ):
            raise ValueError("catalogue must be a list of Meta-format templates with a name")
        if self.known_templates is not None:
            if isinstance(self.known_templates, str) or not all(
                isinstance(name, str) for name in self.known_templates
            ):
                raise ValueError("known_templates must be a list of template names or null")
            self.known_templates = frozenset(self.known_templates)
        if isinstance(self.invalid_numbers, str) or not all(
            isinstance(number, str) for number in self.invalid_numbers
        ):
            raise ValueError("invalid_numbers must be a list of numbers as strings")
        self.invalid_numbers = frozenset(self.invalid_numbers)
        if not isinstance(self.numbers, dict):
            raise ValueError("numbers must map integrated numbers to callback targets")
        self.numbers = {
            str(number): CallbackTarget.from_json(target) for number, target in self.numbers.items()
        }

    def updated(self, changes: dict[str, Any]) -> SimulatorOptions:
        """A copy with ``changes`` (JSON values) applied; ``ValueError`` names a bad knob."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown options: {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The options as JSON, secrets masked."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        out["numbers"] = {number: target.to_json() for number, target in self.numbers.items()}
        out["known_templates"] = (
            None if self.known_templates is None else sorted(self.known_templates)
        )
        out["invalid_numbers"] = sorted(self.invalid_numbers)
        out["authkey"] = None if self.authkey is None else "***"
        out["basic_auth"] = None if self.basic_auth is None else [self.basic_auth[0], "***"]
        return out


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)
