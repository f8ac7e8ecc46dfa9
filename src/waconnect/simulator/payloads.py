"""Callback bodies: generic delivery reports (A4) and inbound messages (A5), MSG91 webhooks (B5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

# (generic code, generic title, Meta code as MSG91 reports it, reason)
Failure = tuple[int, str, int, str]
# (content type "text" | "button" | "interactive", payload or reply id, text)
Reply = tuple[str, str | None, str]

FAILURES: tuple[Failure, ...] = (
    (1002, "Invalid phone number.", 131026, "Message undeliverable."),
    (1003, "Phone number is not active on WhatsApp.", 131026, "Message undeliverable."),
    (
        1006,
        "Phone number is blacklisted.",
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    (1007, "Device cannot receive the message.", 131026, "Message undeliverable."),
    (
        1009,
        "Message failed.",
        131047,
        "Re-engagement message: more than 24 hours since the customer last replied.",
    ),
)
THROTTLED: Failure = (
    1004,
    "Too many sends to this number.",
    131056,
    "(Business Account, Consumer Account) pair rate limit hit.",
)
INVALID_NUMBER: Failure = (
    1002,
    "Invalid phone number.",
    131026,
    "Message undeliverable: invalid recipient number.",
)
TEXT_REPLIES = ("Yes please", "Tell me more", "Thanks!", "What is the price?", "Not now")


class Pending:
    """An accepted message on its way through its reports (and reply)."""

    __slots__ = (
        "accepted_at",
        "content_type",
        "failure",
        "generation",
        "idx",
        "key",
        "language",
        "msg91",
        "number",
        "phone",
        "ref",
        "reply",
        "stages",
        "template",
    )

    def __init__(
        self,
        generation: int,
        idx: int,
        msg91: bool,
        key: str,
        phone: str,
        number: str,
        template: str,
        language: str,
        content_type: str,
        stages: tuple[str, ...],
        failure: Failure | None,
        reply: Reply | None,
        accepted_at: float,
    ) -> None:
        self.generation = generation
        self.idx = idx
        self.msg91 = msg91
        self.key = key  # generic msgId, or MSG91 request id
        self.phone = phone
        self.number = number
        self.template = template
        self.language = language
        self.content_type = content_type
        self.stages = stages
        self.failure = failure
        self.reply = reply
        self.accepted_at = accepted_at
        # The one reference of this message in any report: msgId, or "<request id>:<phone>".
        self.ref = f"{key}:{phone}" if msg91 else key


class Clock:
    """Timestamp strings for callbacks, formatted once per second."""

    __slots__ = ("_iso", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._iso = ""

    def iso(self, epoch: float) -> str:
        second = int(epoch)
        if second != self._second:
            self._second = second
            self._iso = datetime.fromtimestamp(second, UTC).isoformat()
        return self._iso


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def generic_report_body(items: list[tuple[Pending, int]], timestamp: str) -> bytes:
    """One A4 delivery report carrying every status in ``items`` (message, stage index)."""
    statuses = []
    for pending, stage in items:
        status = pending.stages[stage]
        entry: dict[str, Any] = {"msgId": pending.ref, "status": status, "timestamp": timestamp}
        if status == "failed" and pending.failure is not None:
            entry["error"] = {"code": pending.failure[0], "title": pending.failure[1]}
        statuses.append(entry)
    return orjson.dumps({"payloadVersion": "0.1", "statuses": statuses})


def generic_inbound_body(pending: Pending, timestamp: str) -> bytes:
    """One A5 inbound message: the customer's reply to ``pending``."""
    assert pending.reply is not None
    kind, payload, text = pending.reply
    body: dict[str, Any] = {
        "payloadVersion": "0.1",
        "from": pending.phone,
        "wabaNumber": pending.number,
        "timestamp": timestamp,
        "context": {"id": pending.ref},
    }
    if kind == "text":
        body["type"] = "text"
        body["text"] = {"body": text}
    else:
        body["type"] = "button"
        body["button"] = {"payload": payload, "text": text}
    return orjson.dumps(body)


def msg91_report(pending: Pending, stage: int, uuid: str, now: float, clock: Clock) -> dict:
    """One B5 "outbound report" webhook object."""
    status = pending.stages[stage]
    ts = clock.iso(now)
    event: dict[str, Any] = {
        "requestId": pending.key,
        "uuid": uuid,
        "customerNumber": pending.phone,
        "integratedNumber": pending.number,
        "direction": "outbound",
        "eventName": status,
        "status": status,
        "contentType": pending.content_type,
        "templateName": pending.template or None,
        "templateLanguage": pending.language or None,
        "requestedAt": iso(pending.accepted_at),
        "statusUpdatedAt": ts,
        "ts": ts,
        "content": _content(pending),
    }
    if status == "failed" and pending.failure is not None:
        event["statusCode"] = pending.failure[2]
        event["reason"] = pending.failure[3]
    if not pending.msg91:
        # A message sent on the generic endpoint, reported natively: MSG91 names both ids.
        event["clevertapMsgId"] = pending.key
    return event


def msg91_inbound(pending: Pending, uuid: str, now: float, clock: Clock) -> dict:
    """One B5 "inbound request" webhook object: the customer's reply to ``pending``."""
    assert pending.reply is not None
    kind, payload, text = pending.reply
    ts = clock.iso(now)
    message: dict[str, Any] = {
        "from": pending.phone,
        "id": uuid,
        "timestamp": str(int(now)),
        "context": {"from": pending.number, "id": pending.ref},
    }
    event: dict[str, Any] = {
        "uuid": uuid,
        "customerNumber": pending.phone,
        "customerName": "Simulated Customer",
        "integratedNumber": pending.number,
        "direction": "inbound",
        "eventName": "inbound",
        "contentType": kind,
        "replyMsgId": pending.ref,
        "ts": ts,
        "requestedAt": ts,
    }
    if kind == "text":
        event["text"] = text
        message["type"] = "text"
        message["text"] = {"body": text}
    elif kind == "button":
        button = {"payload": payload, "text": text}
        event["button"] = orjson.dumps(button).decode()
        event["text"] = text
        message["type"] = "button"
        message["button"] = button
    else:
        interactive = {"type": "button_reply", "button_reply": {"id": payload, "title": text}}
        event["interactive"] = orjson.dumps(interactive).decode()
        event["text"] = text
        message["type"] = "interactive"
        message["interactive"] = interactive
    if not pending.msg91:
        event["clevertapMsgId"] = pending.key
    event["messages"] = orjson.dumps([message]).decode()
    return event


def _content(pending: Pending) -> str:
    content: dict[str, Any]
    if pending.content_type == "template":
        content = {"template": {"name": pending.template, "language": pending.language}}
    else:
        content = {"type": pending.content_type}
    return orjson.dumps(content).decode()
