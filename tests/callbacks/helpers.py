"""Providers, messages sent through the real dispatcher (answered in-process), and readers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import func, select

from waconnect.messaging import service
from waconnect.messaging.callbacks import applier_of
from waconnect.messaging.dispatcher import Dispatcher
from waconnect.messaging.models import (
    Attempt,
    CallbackRecord,
    Contact,
    InboundRecord,
    Message,
    MessageEvent,
)
from waconnect.providers.adapters.base import HttpRequest
from waconnect.providers.transport import HttpResponse, InDoubt
from waconnect.runtime import Runtime
from waconnect.templates.models import Template

PROVIDERS = "/api/v1/providers"
TEMPLATE_NAME = "order_update"
WABA = "918889500122"


async def create_provider(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nickname": f"p-{time.monotonic_ns()}",
        "kind": "generic",
        "mobile_number": "+91 88895 00122",
        "endpoint_url": "https://api.example.com/whatsapp/send",
    }
    if overrides.get("kind") in ("msg91", "sandbox"):
        body.pop("endpoint_url")
    body.update(overrides)
    response = await client.post(PROVIDERS, json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def path_of(url: str) -> str:
    return urlsplit(url).path


def delivery_path(provider: dict[str, Any]) -> str:
    return path_of(provider["callbacks"]["delivery_url"])


def inbound_path(provider: dict[str, Any]) -> str:
    return path_of(provider["callbacks"]["inbound_url"])


def statuses(*entries: dict[str, Any]) -> dict[str, Any]:
    """A generic delivery report (contracts.md A4)."""
    return {"payloadVersion": "0.1", "statuses": list(entries)}


def status(reference: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"msgId": reference, "status": value, "timestamp": "1731000042", **extra}


def generic_inbound(phone: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    """A generic inbound message (contracts.md A5)."""
    body: dict[str, Any] = {
        "payloadVersion": "0.1",
        "from": phone,
        "wabaNumber": WABA,
        "timestamp": "1731000100",
        "type": "text",
    }
    if text is not None:
        body["text"] = {"body": text}
    body.update(extra)
    return body


def msg91_report(request_id: str | None, phone: str, value: str, **extra: Any) -> dict[str, Any]:
    """One MSG91 per-recipient webhook (contracts.md B5)."""
    body: dict[str, Any] = {
        "customerNumber": phone,
        "integratedNumber": WABA,
        "status": value,
        "templateName": TEMPLATE_NAME,
        "direction": "outbound",
        "ts": "2025-01-01T10:00:00+05:30",
    }
    if request_id is not None:
        body["requestId"] = request_id
    body.update(extra)
    return body


async def drain(runtime: Runtime) -> None:
    applier = applier_of(runtime)
    assert applier is not None, "the callback applier is not running"
    await asyncio.wait_for(applier.drain(), 30)


# --- sending through the real dispatcher -------------------------------------------------------


class FakeProvider:
    """A Transport answering in-process like the provider kind does; ``script`` overrides the
    next answers (an HttpResponse, or an exception to raise)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.requests: list[HttpRequest] = []
        self.script: list[HttpResponse | Exception] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if self.kind == "msg91":
            body = {
                "status": "success",
                "hasError": False,
                "data": "Your request is in process, check delivery reports for status",
                "errors": None,
                "request_id": f"req-{len(self.requests)}",
            }
            return HttpResponse(200, orjson.dumps(body))
        return HttpResponse(200, b'{"status": "success"}')

    async def close(self) -> None:
        return None


def timeout() -> InDoubt:
    return InDoubt("no answer before the timeout")


async def add_template(runtime: Runtime, provider: dict[str, Any]) -> int:
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        template = Template(
            workspace_id=await _workspace_of(runtime, provider["id"]),
            provider_id=provider["id"],
            name=TEMPLATE_NAME,
            language="en",
            category="UTILITY",
            status="APPROVED",
            definition={"components": [{"type": "BODY", "text": "Your order is on its way"}]},
            created_at=now,
            updated_at=now,
        )
        session.add(template)
        await session.commit()
        return template.id


async def _workspace_of(runtime: Runtime, provider_id: int) -> int:
    from waconnect.providers.models import ProviderConfig

    async with runtime.sessions() as session:
        config = await session.get(ProviderConfig, provider_id)
        assert config is not None
        return config.workspace_id


class Outbox:
    """Queues template messages and lets the real dispatcher send them once, then stops it, so
    nothing moves while a test posts its reports."""

    def __init__(self, runtime: Runtime, provider: dict[str, Any]) -> None:
        self.runtime = runtime
        self.provider = provider
        self.transport = FakeProvider(provider["kind"])
        self.template_id: int | None = None

    async def send(self, phones: Sequence[str]) -> list[int]:
        if self.template_id is None:
            self.template_id = await add_template(self.runtime, self.provider)
        workspace_id = await _workspace_of(self.runtime, self.provider["id"])
        rows = [
            service.NewMessage(
                provider_id=self.provider["id"],
                to_phone=phone,
                kind="template",
                content={"components": []},
                template_id=self.template_id,
            )
            for phone in phones
        ]
        async with self.runtime.sessions() as session:
            ids = await service.enqueue(session, self.runtime, workspace_id, rows)
            await session.commit()
        await self.dispatch(ids)
        return ids

    async def dispatch(self, ids: Sequence[int]) -> None:
        """Run the dispatcher until each message's latest attempt has its outcome recorded."""
        before = {m.id: m.attempt_count for m in await messages(self.runtime, ids)}
        dispatcher = Dispatcher(self.runtime, transport_factory=lambda _config: self.transport)
        await dispatcher.start()
        try:
            deadline = time.monotonic() + 20
            while True:
                dispatcher.wake()
                rows = await messages(self.runtime, ids)
                done = [
                    m.attempt_count > before[m.id] and not m.pending_attempt and not m.lease_owner
                    for m in rows
                ]
                if all(done):
                    return
                assert time.monotonic() < deadline, [
                    (m.id, m.status, m.attempt_count) for m in rows
                ]
                await asyncio.sleep(0.02)
        finally:
            await dispatcher.stop()


# --- reading the database ---------------------------------------------------------------------


async def messages(runtime: Runtime, ids: Sequence[int]) -> list[Message]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(Message).where(Message.id.in_(ids)))
        found = {m.id: m for m in rows}
    return [found[i] for i in ids]


async def message(runtime: Runtime, message_id: int) -> Message:
    (found,) = await messages(runtime, [message_id])
    return found


async def events(runtime: Runtime, message_id: int) -> list[MessageEvent]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        )
        return list(rows)


async def attempts(runtime: Runtime, message_id: int) -> list[Attempt]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(Attempt).where(Attempt.message_id == message_id).order_by(Attempt.number)
        )
        return list(rows)


async def reference(runtime: Runtime, message_id: int, number: int | None = None) -> str:
    found = await attempts(runtime, message_id)
    chosen = found[-1] if number is None else next(a for a in found if a.number == number)
    return chosen.reference


async def records(runtime: Runtime) -> list[CallbackRecord]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(CallbackRecord).order_by(CallbackRecord.id)))


async def count(runtime: Runtime, model: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def inbound_records(runtime: Runtime) -> list[InboundRecord]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(InboundRecord).order_by(InboundRecord.id)))


async def contact(runtime: Runtime, phone: str) -> Contact | None:
    async with runtime.sessions() as session:
        found: Contact | None = await session.scalar(select(Contact).where(Contact.phone == phone))
        return found


async def auto_replies(runtime: Runtime) -> list[Message]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(Message).where(Message.source == "auto_reply").order_by(Message.id)
        )
        return list(rows)
