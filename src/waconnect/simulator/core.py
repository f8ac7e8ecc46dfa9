"""The simulator's state: options, counters, message log, and the fate of accepted messages."""

from __future__ import annotations

import base64
import binascii
import itertools
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from waconnect.simulator.callbacks import CallbackDispatcher
from waconnect.simulator.log import (
    OUTCOME_DELIVERED,
    OUTCOME_FAILED,
    OUTCOME_INVALID,
    OUTCOME_READ,
    OUTCOME_THROTTLED,
    MessageLog,
    Stats,
)
from waconnect.simulator.options import CallbackTarget, SimulatorOptions
from waconnect.simulator.payloads import (
    FAILURES,
    INVALID_NUMBER,
    TEXT_REPLIES,
    THROTTLED,
    Failure,
    Pending,
    Reply,
)

# Faults drawn per send request.
NO_FAULT = 0
FAULT_429 = 429
FAULT_5XX = 500
FAULT_TIMEOUT = 1

_READ: tuple[str, ...] = ("sent", "delivered", "read")
_DELIVERED: tuple[str, ...] = ("sent", "delivered")
_SENT_FAILED: tuple[str, ...] = ("sent", "failed")
_FAILED: tuple[str, ...] = ("failed",)

VERIFY_NAMESPACE = "whatsapp:hsm:technology:generic:verify"


def is_phone(value: Any) -> bool:
    """Digits 8-15 long (no ``+``): what MSG91 accepts as a number."""
    return isinstance(value, str) and 8 <= len(value) <= 15 and value.isascii() and value.isdigit()


class Simulator:
    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self.stats = Stats()
        self.log = MessageLog(self.options.max_logged_messages)
        self.generation = 0  # bumped by reset: callbacks of older messages are dropped
        self._seen: set[int] = set()
        self.dispatcher = CallbackDispatcher(self)
        self._seed(self.options.seed)
        self._derive()

    # -- options ------------------------------------------------------------------------------

    def set_options(self, options: SimulatorOptions) -> None:
        previous = self.options
        self.options = options
        self.log.limit = options.max_logged_messages
        if options.seed != previous.seed:
            self._seed(options.seed)
        self._derive()

    def _seed(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self._ids = random.Random(None if seed is None else seed + 1)
        bits = self._ids.getrandbits(72)
        # uuid-shaped: 8-4-4-4 from the seed, then the event counter.
        self._uuid_prefix = (
            f"{bits >> 40:08x}-{(bits >> 24) & 0xFFFF:04x}-4{(bits >> 12) & 0xFFF:03x}-"
            f"a{bits & 0xFFF:03x}-"
        )
        self._uuids = itertools.count(1)

    def target_for(self, integrated_number: str) -> CallbackTarget:
        """Where callbacks about messages from ``integrated_number`` go: the number's own
        target, its blanks filled from the default URLs and format."""
        return self._targets.get(integrated_number) or self._default_target

    def _derive(self) -> None:
        options = self.options
        default = CallbackTarget(options.delivery_url, options.inbound_url, options.callback_format)
        self._default_target = default
        self._targets = {
            number: CallbackTarget(
                target.delivery_url or default.delivery_url,
                target.inbound_url or default.inbound_url,
                target.format or default.format,
            )
            for number, target in options.numbers.items()
        }
        self.basic_header: str | None = None
        if options.basic_auth is not None:
            pair = f"{options.basic_auth[0]}:{options.basic_auth[1]}".encode()
            self.basic_header = "Basic " + base64.b64encode(pair).decode()
        # B4 groups the catalogue by name; quick-reply texts help replies to native sends.
        grouped: dict[str, dict[str, Any]] = {}
        quick_replies: dict[str, list[tuple[str, str]]] = {}
        for item in options.catalogue:
            name = item["name"]
            entry = grouped.get(name)
            if entry is None:
                entry = grouped[name] = {
                    "name": name,
                    "category": item.get("category"),
                    "languages": [],
                }
            entry["languages"].append(
                {
                    "id": item.get("id"),
                    "status": item.get("status", "APPROVED"),
                    "language": item.get("language"),
                    "code": item.get("components", []),
                }
            )
            for component in item.get("components") or []:
                if str(component.get("type", "")).upper() != "BUTTONS":
                    continue
                for button in component.get("buttons") or []:
                    if str(button.get("type", "")).upper() == "QUICK_REPLY" and button.get("text"):
                        quick_replies.setdefault(name, []).append((button["text"], button["text"]))
        self.catalogue_by_name = list(grouped.values())
        self.catalogue_quick_replies = quick_replies

    # -- credentials --------------------------------------------------------------------------

    def authkey_ok(self, headers: Mapping[str, str]) -> bool:
        expected = self.options.authkey
        return expected is None or headers.get("Authkey") == expected

    def basic_ok(self, headers: Mapping[str, str]) -> bool:
        expected = self.basic_header
        if expected is None:
            return True
        given = headers.get("Authorization")
        if given is None:
            return False
        if given == expected:
            return True
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            return base64.b64decode(token.strip(), validate=True) == base64.b64decode(expected[6:])
        except (binascii.Error, ValueError):
            return False

    # -- sends ----------------------------------------------------------------------------------

    def draw_fault(self) -> int:
        options = self.options
        if not (options.ratio_429 or options.ratio_5xx or options.ratio_timeout):
            return NO_FAULT
        draw = self.rng.random()
        if draw < options.ratio_429:
            return FAULT_429
        draw -= options.ratio_429
        if draw < options.ratio_5xx:
            return FAULT_5XX
        draw -= options.ratio_5xx
        if draw < options.ratio_timeout:
            return FAULT_TIMEOUT
        return NO_FAULT

    def new_request_id(self) -> str:
        return f"{self._ids.getrandbits(96):024x}"

    def next_uuid(self) -> str:
        return f"{self._uuid_prefix}{next(self._uuids):012x}"

    def accept(
        self,
        *,
        msg91: bool,
        key: str,
        phone: str,
        number: str,
        template: str,
        language: str,
        content_type: str,
        dedupe: int | None,
        quick_replies: Sequence[tuple[str, str]] = (),
        valid: bool = True,
    ) -> None:
        """Record an accepted message, decide its fate, and schedule its callbacks.

        ``dedupe`` identifies what the customer would see; accepting it again is a duplicate.
        ``quick_replies`` are (payload or reply id, text) a reply may tap.
        """
        stats = self.stats
        stats.messages_accepted += 1
        if dedupe is not None:
            if dedupe in self._seen:
                stats.duplicates += 1
            else:
                self._seen.add(dedupe)
        options = self.options
        rng = self.rng
        failure: Failure | None = None
        reply: Reply | None = None
        if not valid:
            stages, failure, outcome = _FAILED, INVALID_NUMBER, OUTCOME_INVALID
        elif options.throttle_fail_ratio and rng.random() < options.throttle_fail_ratio:
            stages, failure, outcome = _FAILED, THROTTLED, OUTCOME_THROTTLED
        elif options.fail_ratio and rng.random() < options.fail_ratio:
            stages, failure, outcome = _SENT_FAILED, rng.choice(FAILURES), OUTCOME_FAILED
        else:
            read_ratio = options.read_ratio
            if read_ratio >= 1 or (read_ratio and rng.random() < read_ratio):
                stages, outcome = _READ, OUTCOME_READ
            else:
                stages, outcome = _DELIVERED, OUTCOME_DELIVERED
            reply_ratio = options.reply_ratio
            if reply_ratio and (reply_ratio >= 1 or rng.random() < reply_ratio):
                reply = self._pick_reply(quick_replies, content_type, template)
        accepted_at = time.time()
        idx = self.log.append(key, phone, number, template, accepted_at, outcome, msg91)
        target = self.target_for(number)
        if failure is not None:
            reported_natively = (target.format or ("msg91" if msg91 else "generic")) == "msg91"
            self.log.set_code(idx, failure[2] if reported_natively else failure[0])
        if options.callbacks and (target.delivery_url or target.inbound_url):
            pending = Pending(
                self.generation,
                idx,
                msg91,
                key,
                phone,
                number,
                template,
                language,
                content_type,
                stages,
                failure,
                reply,
                accepted_at,
            )
            self.dispatcher.schedule(pending, 0, options.report_delay_ms / 1000)

    def _pick_reply(
        self, quick_replies: Sequence[tuple[str, str]], content_type: str, template: str
    ) -> Reply:
        if not quick_replies and template:
            quick_replies = self.catalogue_quick_replies.get(template, ())
        if quick_replies:
            payload, text = self.rng.choice(quick_replies)
            return ("interactive" if content_type == "interactive" else "button", payload, text)
        return ("text", None, self.rng.choice(TEXT_REPLIES))

    def reset(self) -> None:
        """Clear counters, log, duplicate memory and scheduled callbacks."""
        self.generation += 1
        self.stats.reset()
        self.log.clear()
        self._seen.clear()
        self.dispatcher.clear()
